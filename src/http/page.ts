import type { StatusView } from './status.js';
import { KIND_WORDS, type PostureReport } from '../ssh/postureReport.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
const e = (v: unknown) => escapeHtml(v === null || v === undefined ? '—' : String(v));

const ROLE_COLOURS: Record<string, string> = { leader: '#1b7f3b', standby: '#5a6270', draining: '#b26a00', fenced: '#b3261e' };

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const time = (isoText: string) => isoText.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** Legacy algorithm use: the verdict sentence, then one row per algorithm negotiated in the last 24 h. */
function postureSection(p: PostureReport | null): string {
  if (!p) return '';
  const rows = [...p.legacy, ...p.compat]
    .map(
      (u) =>
        `<tr data-algorithm="${e(u.algorithm)}" data-tier="${e(u.tier)}"><td class="mono">${e(u.algorithm)}</td><td>${e(KIND_WORDS[u.kind])}</td><td>${u.tier === 'legacy' ? 'legacy (off with auth.allowSshRsaSha1: false)' : 'kept for old clients'}</td><td>${e(u.handshakes24h)}</td><td>${e(time(u.lastSeen))}</td><td class="mono">${e(u.clients.join(', '))}</td></tr>`,
    )
    .join('\n');
  const cls = p.verdict === 'in-use' ? ' class="banner"' : '';
  return `<h2>SSH algorithms of old clients (last ${e(p.windowHours)} h)</h2>
<p id="algorithm-posture" data-verdict="${e(p.verdict)}"${cls}>${e(p.summary)}</p>
${rows ? `<table id="algorithms"><thead><tr><th>algorithm</th><th>for</th><th>tier</th><th>handshakes</th><th>last</th><th>clients</th></tr></thead>\n<tbody>\n${rows}\n</tbody></table>\n` : ''}`;
}

/** A warning while etcd is reachable without TLS or without authentication (docs/etcd-security.md). */
function etcdBanner(v: StatusView): string {
  const etcd = v.etcd;
  if (!etcd || (etcd.tls && etcd.auth)) return '';
  const problems = [
    ...(etcd.insecure ? ['plain HTTP (insecure: true): anyone who reaches it can delete the election key, take the lead or forge run-once claims; use https endpoints with tls (execgate certs)'] : []),
    ...(etcd.auth ? [] : ['no authentication: any client that gets through may write every key; run execgate etcd-setup --apply and set auth']),
  ];
  return `<p id="etcd-insecure" class="banner bad" data-tls="${etcd.tls}" data-auth="${etcd.auth}" data-insecure="${etcd.insecure}">etcd is not protected: ${e(problems.join('; '))} (docs/etcd-security.md).</p>\n`;
}

/** How often the page reloads itself (seconds). */
export const PAGE_REFRESH_SECONDS = 2;

/** The operator's status page: server-rendered, no scripts, reloads itself. */
export function renderPage(v: StatusView): string {
  const colour = ROLE_COLOURS[v.role] ?? '#333';
  const failures = v.recent.filter((c) => c.result !== 'completed' || c.exitStatus !== 0).slice(0, 20);
  const cmdCell = (c: string | null) => (c === null ? '<td class="muted">hidden</td>' : `<td class="cmd">${e(c)}</td>`);
  const running = v.running.length
    ? v.running
        .map(
          (c) =>
            `<tr data-exec-id="${e(c.id)}"><td class="mono">${e(c.id.slice(0, 8))}</td><td>${e(c.user)}</td>${cmdCell(c.command)}<td>${e(c.client)}</td><td>${e(time(c.started))}</td><td>${e(duration(c.runningSeconds))}</td><td>${e(c.pid)}</td></tr>`,
        )
        .join('\n')
    : '<tr><td colspan="7" class="muted">no command running</td></tr>';
  const failed = failures.length
    ? failures
        .map(
          (c) =>
            `<tr><td class="mono">${e(c.id.slice(0, 8))}</td><td>${e(c.user)}</td>${cmdCell(c.command)}<td>${e(c.result)}</td><td>${e(c.exitStatus)}</td><td>${e(time(c.ended))}</td><td>${e(duration(c.durationSeconds))}</td></tr>`,
        )
        .join('\n')
    : '<tr><td colspan="7" class="muted">no recent failures</td></tr>';
  const drain =
    v.drain.phase === 'active'
      ? ''
      : `<p class="banner">Drain: <b>${e(v.drain.phase)}</b> since ${e(v.drain.since && time(v.drain.since))}${v.drain.deadline ? `; commands still running are killed at ${e(time(v.drain.deadline))}` : ''}${v.drain.error ? `; ${e(v.drain.error)}` : ''}. Undo with <code>execgate undrain</code>.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${PAGE_REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(v.role)} · ${e(v.node)} · execgate</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d1f23;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .8rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.role{display:inline-block;padding:.2rem .8rem;border-radius:.3rem;color:#fff;font-weight:600;text-transform:uppercase;letter-spacing:.05em;background:${colour}}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;margin:.8rem 0}dt{color:#5a6270}dd{margin:0}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e5e8;vertical-align:top}
th{font-weight:600;color:#5a6270}.mono,.cmd{font-family:ui-monospace,monospace}.cmd{word-break:break-all}.muted{color:#8a919c}
.bad{color:#b3261e}.banner{background:#fff4e0;border:1px solid #f0c36d;padding:.5rem .8rem;border-radius:.3rem}footer{margin-top:1.5rem;color:#8a919c;font-size:12px}
</style></head>
<body>
<h1>execgate on ${e(v.node)} <span id="role" class="role" data-role="${e(v.role)}">${e(v.role)}</span></h1>
${drain}
${etcdBanner(v)}<dl>
<dt>Leader</dt><dd id="leader">${e(v.leader)}</dd>
<dt>Fencing token</dt><dd id="token" class="mono">${e(v.token)}</dd>
<dt>Role since</dt><dd>${e(time(v.since))}${v.reason ? ` (${e(v.reason)})` : ''}</dd>
<dt>Health</dt><dd id="health" class="${v.health.ok ? '' : 'bad'}">${v.health.ok ? 'healthy' : `unhealthy: ${e(v.health.reason)}`}</dd>
<dt>Leadership source</dt><dd>${e(v.leadership)}</dd>
<dt>SSH</dt><dd class="mono">${e(v.listen.join(', '))}</dd>
</dl>
<h2>Running commands (<span id="running-count">${v.running.length}</span>)</h2>
${v.commandLines === 'hidden' ? '<p id="commands-hidden" class="muted">Command lines are hidden: they need this node\'s bearer token (<code>execgate status</code> on the node sends it).</p>\n' : ''}<table id="running"><thead><tr><th>id</th><th>user</th><th>command</th><th>client</th><th>started</th><th>running for</th><th>pid</th></tr></thead>
<tbody>
${running}
</tbody></table>
<h2>Recent failures</h2>
<table id="failures"><thead><tr><th>id</th><th>user</th><th>command</th><th>result</th><th>exit</th><th>ended</th><th>took</th></tr></thead>
<tbody>
${failed}
</tbody></table>
${postureSection(v.algorithms)}<footer>execgate ${e(v.version)} · up ${e(duration(v.uptimeSeconds))} · ${v.recent.length} recent command(s) · refreshes every ${PAGE_REFRESH_SECONDS} s · <a href="status">status JSON</a> · <a href="metrics">metrics</a></footer>
</body></html>
`;
}
