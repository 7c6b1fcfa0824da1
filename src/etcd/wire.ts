/**
 * etcd's JSON gateway (grpc-gateway) encoding: keys and values base64, int64 as decimal
 * strings, enums by name, fields that hold their default (0, false, empty) left out.
 */
import type { Compare, EtcdKeyValue, Op, OpResponse, Txn, TxnResult } from './api.js';

export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The smallest key greater than every key starting with prefix (etcd's range_end), base64. */
export function prefixRangeEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = end[i]! + 1;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64'); // every key
}

export interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export function parseKv(raw: RawKv): EtcdKeyValue {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    createRevision: BigInt(raw.create_revision ?? '0'),
    modRevision: BigInt(raw.mod_revision ?? '0'),
    version: BigInt(raw.version ?? '0'),
    lease: raw.lease ?? '0',
  };
}

function encodeCompare(c: Compare): Record<string, unknown> {
  const base = { key: b64(c.key), result: c.result.toUpperCase() };
  switch (c.target) {
    case 'create':
      return { ...base, target: 'CREATE', create_revision: c.revision.toString() };
    case 'mod':
      return { ...base, target: 'MOD', mod_revision: c.revision.toString() };
    case 'version':
      return { ...base, target: 'VERSION', version: c.version.toString() };
    case 'value':
      return { ...base, target: 'VALUE', value: b64(c.value) };
    case 'lease':
      return { ...base, target: 'LEASE', lease: c.lease };
  }
}

function encodeOp(op: Op): Record<string, unknown> {
  switch (op.type) {
    case 'put':
      return op.ignoreLease ? { request_put: { key: b64(op.key), value: b64(op.value), ignore_lease: true } } : { request_put: { key: b64(op.key), value: b64(op.value), lease: op.lease ?? '0' } };
    case 'deleteRange':
      return { request_delete_range: { key: b64(op.key) } };
    case 'range':
      return { request_range: op.prefix ? { key: b64(op.key), range_end: prefixRangeEnd(op.key) } : { key: b64(op.key) } };
  }
}

export function encodeTxn(t: Txn): Record<string, unknown> {
  return { compare: t.compare.map(encodeCompare), success: t.success.map(encodeOp), failure: (t.failure ?? []).map(encodeOp) };
}

export interface RawTxnResponse {
  succeeded?: boolean;
  header?: { revision?: string };
  responses?: Array<{
    response_put?: unknown;
    response_delete_range?: { deleted?: string };
    response_range?: { kvs?: RawKv[] };
  }>;
}

function decodeOpResponse(raw: NonNullable<RawTxnResponse['responses']>[number], op: Op): OpResponse {
  // Which op a response answers is known from the request; the gateway also names it.
  switch (op.type) {
    case 'put':
      return { type: 'put' };
    case 'deleteRange':
      return { type: 'deleteRange', deleted: Number(raw.response_delete_range?.deleted ?? '0') };
    case 'range':
      return { type: 'range', kvs: (raw.response_range?.kvs ?? []).map(parseKv) };
  }
}

export function decodeTxnResponse(raw: RawTxnResponse, t: Txn): TxnResult {
  const succeeded = raw.succeeded === true;
  const ran = succeeded ? t.success : (t.failure ?? []);
  const responses = raw.responses ?? [];
  if (responses.length !== ran.length) {
    throw new Error(`etcd txn answered ${responses.length} responses for ${ran.length} ops: not an etcd v3 JSON gateway?`);
  }
  return { succeeded, responses: responses.map((r, i) => decodeOpResponse(r, ran[i]!)), revision: BigInt(raw.header?.revision ?? '0') };
}
