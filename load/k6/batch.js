// Batches: POST /v1/transfers/batch with BATCH_SIZE transfers each (default 500, at most
// 1,000), VUS (default 4) sharing TRANSFERS / BATCH_SIZE requests (default 100,000
// transfers), pairs as the seed's (i -> N-1-i over ACCOUNTS, default 10,000).
//
//   orion accounts seed --first 40817810111322211 --count 10000 --balance 1000000000
//   k6 run load/k6/batch.js
//
// `transfers_accepted` counts accepted items; its rate is the accepted transfers per second.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL, JSON_HEADERS, intEnv, mirrorPair, transferItem } from './lib.js';

const TRANSFERS = __ENV.FULL === '1' ? 1000000 : intEnv('TRANSFERS', 100000);
const BATCH_SIZE = Math.min(1000, intEnv('BATCH_SIZE', 500));
const ACCOUNTS = intEnv('ACCOUNTS', 10000);
const accepted = new Counter('transfers_accepted');
const refused = new Counter('transfers_refused');

export const options = {
  scenarios: {
    batch: {
      executor: 'shared-iterations',
      vus: intEnv('VUS', 4),
      iterations: Math.ceil(TRANSFERS / BATCH_SIZE),
      maxDuration: __ENV.MAX_DURATION || '30m',
    },
  },
  thresholds: { http_req_failed: ['rate<0.01'], transfers_refused: ['count<1'] },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const first = exec.scenario.iterationInTest * BATCH_SIZE;
  const last = Math.min(first + BATCH_SIZE, TRANSFERS);
  const transfers = [];
  for (let i = first; i < last; i++) {
    transfers.push(transferItem(mirrorPair(i, TRANSFERS, ACCOUNTS), ACCOUNTS));
  }
  const res = http.post(`${BASE_URL}/v1/transfers/batch`, JSON.stringify({ transfers }), JSON_HEADERS);
  const ok = check(res, { 'status 200': (r) => r.status === 200 });
  if (!ok) {
    refused.add(transfers.length);
    return;
  }
  const results = res.json('results') || [];
  const n = results.filter((r) => r.status === 'accepted').length;
  accepted.add(n);
  refused.add(transfers.length - n);
}
