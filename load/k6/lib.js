// Shared helpers of Orion's k6 scripts: ids, the seed's account numbers, request bodies.
//
// Account numbers are 17 digits (40817810111322211 ...), beyond JavaScript's exact integers
// (2^53), so they are built as a fixed 9-digit prefix plus an 8-digit number that stays
// exact. Seed the pool first, e.g. for the default 10,000 accounts:
//   orion accounts seed --first 40817810111322211 --count 10000 --balance 1000000000

import crypto from 'k6/crypto';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
export const CURRENCY = __ENV.CURRENCY || 'RUB';
export const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };

const ACCOUNT_PREFIX = '408178101'; // 40817810111322211 = '408178101' + '11322211'
const ACCOUNT_BASE = 11322211;
const ACCOUNT_SUFFIX_MAX = 99999999; // 8 digits: no carry into the prefix

export function intEnv(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = parseInt(raw, 10);
  if (!Number.isFinite(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

// The pool's account number of index 0 .. accounts-1, as the 17-digit string the API wants.
export function account(index, accounts) {
  if (ACCOUNT_BASE + accounts - 1 > ACCOUNT_SUFFIX_MAX) throw new Error('account pool too large');
  return ACCOUNT_PREFIX + String(ACCOUNT_BASE + (index % accounts));
}

// The seed's shape: transfer i goes from account i to account N-1-i (both mod A); when they
// coincide (2i = N-1 mod A) the receiver moves to the next account, as `orion bench` does.
export function mirrorPair(i, count, accounts) {
  const sender = i % accounts;
  let receiver = (count - 1 - i) % accounts;
  if (receiver === sender) receiver = (receiver + 1) % accounts;
  return [sender, receiver];
}

// A uniformly random pair of distinct accounts.
export function randomPair(accounts) {
  const sender = Math.floor(Math.random() * accounts);
  const receiver = (sender + 1 + Math.floor(Math.random() * (accounts - 1))) % accounts;
  return [sender, receiver];
}

export function uuidv4() {
  const b = new Uint8Array(crypto.randomBytes(16));
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// One /v1/transfers item: 1 major unit from `pair[0]` to `pair[1]` of the pool.
export function transferItem(pair, accounts) {
  return {
    id: uuidv4(),
    debit_account_id: account(pair[0], accounts),
    credit_account_id: account(pair[1], accounts),
    amount: '1',
    currency: CURRENCY,
  };
}
