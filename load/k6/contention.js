// Contention: random sender/receiver pairs over a small pool (ACCOUNTS, default 1,000), one
// transfer per POST /v1/transfers, VUS (default 200) sharing ITERATIONS (default 100,000).
//
//   orion accounts seed --first 40817810111322211 --count 1000 --balance 1000000000
//   k6 run load/k6/contention.js

import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, JSON_HEADERS, intEnv, randomPair, transferItem } from './lib.js';

const ACCOUNTS = intEnv('ACCOUNTS', 1000);

export const options = {
  scenarios: {
    contention: {
      executor: 'shared-iterations',
      vus: intEnv('VUS', 200),
      iterations: __ENV.FULL === '1' ? 1000000 : intEnv('ITERATIONS', 100000),
      maxDuration: __ENV.MAX_DURATION || '30m',
    },
  },
  thresholds: { http_req_failed: ['rate<0.01'], checks: ['rate>0.99'] },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const body = JSON.stringify(transferItem(randomPair(ACCOUNTS), ACCOUNTS));
  const res = http.post(`${BASE_URL}/v1/transfers`, body, JSON_HEADERS);
  check(res, { 'status 202': (r) => r.status === 202 });
}
