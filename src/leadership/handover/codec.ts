/**
 * The value of an election key in etcd: the node's name, then what it says about a
 * planned handover. One codec, so no other module parses these strings.
 *
 *   "<node>"                a candidate (a leader when its key is the oldest candidate)
 *   "<node> handover"       a leader announcing a handover (strict mode)
 *   "<node> ready <id>"     the next in line: every load balancer now sends it traffic,
 *                           for the announce whose id (the leader key's mod revision) is <id>
 *   "<node> resigned"       gave up admission; its commands finish under its lease
 *   "<node> resigned vip"   the same, and it keeps the VIP until the connections that came
 *                           in on it end
 *
 * A resigned key is no candidate: the next oldest candidate leads, with a larger token.
 * Words this version does not know are read as a candidate (an older node's value).
 */
export type ElectionMark = { kind: 'candidate' } | { kind: 'handover' } | { kind: 'ready'; handoverId: string } | { kind: 'resigned'; holdsVip: boolean };

export interface ElectionValue {
  /** Empty when the value did not name a node (the key's name says it then). */
  node: string;
  mark: ElectionMark;
}

export function encodeElectionValue(node: string, mark: ElectionMark = { kind: 'candidate' }): string {
  switch (mark.kind) {
    case 'candidate':
      return node;
    case 'handover':
      return `${node} handover`;
    case 'ready':
      return `${node} ready ${mark.handoverId}`;
    case 'resigned':
      return mark.holdsVip ? `${node} resigned vip` : `${node} resigned`;
  }
}

export function decodeElectionValue(value: string): ElectionValue {
  const [node = '', word, arg] = value.trim().split(/\s+/);
  switch (word) {
    case 'handover':
      return { node, mark: { kind: 'handover' } };
    case 'ready':
      return arg ? { node, mark: { kind: 'ready', handoverId: arg } } : { node, mark: { kind: 'candidate' } };
    case 'resigned':
      return { node, mark: { kind: 'resigned', holdsVip: arg === 'vip' } };
    default:
      return { node, mark: { kind: 'candidate' } };
  }
}
