// The original system's load test, against Orion's seed-compatible endpoint:
// 200 VUs share N iterations (default 100,000; FULL=1: 1,000,000), each one
// POST /transactions/ {sender_account, receiver_account, amount, transaction_id}.
// Transfer i goes from account i to account N-1-i over a pool of ACCOUNTS (default 10,000).
//
//   orion accounts seed --first 40817810111322211 --count 10000 --balance 1000000000
//   k6 run load/k6/seed.js                      # BASE_URL=http://127.0.0.1:8000 by default
//   k6 run -e FULL=1 load/k6/seed.js
//
// k6 measures acceptance only; `orion bench seed` also measures settlement and audits.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { BASE_URL, JSON_HEADERS, account, intEnv, mirrorPair, uuidv4 } from './lib.js';

const COUNT = __ENV.FULL === '1' ? 1000000 : intEnv('ITERATIONS', 100000);
const ACCOUNTS = intEnv('ACCOUNTS', 10000);

export const options = {
  scenarios: {
    seed: {
      executor: 'shared-iterations',
      vus: intEnv('VUS', 200),
      iterations: COUNT,
      maxDuration: __ENV.MAX_DURATION || '30m',
    },
  },
  thresholds: { http_req_failed: ['rate<0.01'], checks: ['rate>0.99'] },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const i = exec.scenario.iterationInTest; // 0 .. COUNT-1, unique across VUs
  const [sender, receiver] = mirrorPair(i, COUNT, ACCOUNTS);
  const body = JSON.stringify({
    sender_account: account(sender, ACCOUNTS),
    receiver_account: account(receiver, ACCOUNTS),
    amount: 1,
    transaction_id: uuidv4(),
  });
  const res = http.post(`${BASE_URL}/transactions/`, body, JSON_HEADERS);
  check(res, {
    'status 200': (r) => r.status === 200,
    'queued': (r) => r.status === 200 && r.json('status') === 'queued',
  });
}
