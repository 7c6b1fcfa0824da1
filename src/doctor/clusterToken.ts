import type { Cluster } from '../config/cluster.js';
import { resolveServerToken } from '../config/tokenFile.js';
import type { Row } from './report.js';

/**
 * The token the doctor sends its peers: --token, else the cluster's token
 * (gateway.http.tokenFile, the same file on every node). A row when there is none to send,
 * or when the file cannot be read here (then /status hides command lines, nothing else).
 */
export function clusterTokenRow(cluster: Cluster, flagToken: string | undefined): { token: string | undefined; row: Row | null } {
  if (flagToken !== undefined) return { token: flagToken, row: null };
  const http = cluster.gateway.http;
  try {
    const token = resolveServerToken(http);
    if (token !== undefined) return { token, row: { check: 'cluster token', target: http.tokenFile ?? 'gateway.http.token', verdict: 'ok', detail: 'sent to every peer' } };
  } catch (err) {
    return {
      token: undefined,
      row: {
        check: 'cluster token',
        target: http.tokenFile ?? '-',
        verdict: 'warn',
        detail: `not readable here: ${(err as Error).message}`,
        fix: 'run the doctor as root on a gateway, or pass --token',
      },
    };
  }
  if (cluster.nodes.length < 2) return { token: undefined, row: null };
  return {
    token: undefined,
    row: {
      check: 'cluster token',
      target: 'gateway.http.tokenFile',
      verdict: 'fail',
      detail: "no cluster token: peers' /peer/* endpoints refuse everything (dispatch scripts are not replicated) and admin calls are open to local root only",
      fix: 'set gateway.http.tokenFile: /etc/execgate/http-token in the cluster file and install the same file on every node (install.sh writes one: copy it), then restart the gateways',
    },
  };
}
