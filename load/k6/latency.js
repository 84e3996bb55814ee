// Latency at a fixed arrival rate (open loop): RATE transfers per second (default 1,000) for
// DURATION (default 30s), one per POST /v1/transfers, random pairs over ACCOUNTS (10,000).
// k6's constant-arrival-rate executor starts iterations on schedule whether or not earlier
// ones have answered; when it runs out of VUs it drops iterations and counts them in
// `dropped_iterations` (a non-zero count means the target rate was not offered).
// Note: k6 times each request from when it was sent; `orion bench latency` times from the
// scheduled instant and also reports accept -> settled.
//
//   orion accounts seed --first 40817810111322211 --count 10000 --balance 1000000000
//   k6 run -e RATE=1000 -e DURATION=30s load/k6/latency.js

import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, JSON_HEADERS, intEnv, randomPair, transferItem } from './lib.js';

const ACCOUNTS = intEnv('ACCOUNTS', 10000);

export const options = {
  scenarios: {
    latency: {
      executor: 'constant-arrival-rate',
      rate: intEnv('RATE', 1000),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: intEnv('VUS', 200),
      maxVUs: intEnv('MAX_VUS', 2000),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    dropped_iterations: ['count<1'],
    http_req_duration: ['p(99)<1000'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  const body = JSON.stringify(transferItem(randomPair(ACCOUNTS), ACCOUNTS));
  const res = http.post(`${BASE_URL}/v1/transfers`, body, JSON_HEADERS);
  check(res, { 'status 202': (r) => r.status === 202 });
}
