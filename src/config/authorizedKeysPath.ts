// authorizedKeys path tokens (%u, %h, %%): the config checks them, the authenticator expands them.

/**
 * authorizedKeys may name one file per SSH user, like sshd's AuthorizedKeysFile:
 * %u is the SSH username, %h the home directory of the local account it runs as,
 * %% a literal "%". Any other "%" sequence is refused (a typo must not become a
 * shared file).
 */
export function authorizedKeysPathProblem(pattern: string): string | null {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== '%') continue;
    const t = pattern[++i];
    if (t !== 'u' && t !== 'h' && t !== '%') {
      return `"%${t ?? ''}" is not a token: use %u (the SSH username), %h (the account's home) or %% (a literal %)`;
    }
  }
  if (/%h/.test(pattern.replace(/%%/g, '')) && !pattern.startsWith('%h/')) return '%h must start the path (e.g. %h/.ssh/authorized_keys)';
  return null;
}

/** True when the path names one file per SSH user (%u or %h). */
export function isPerUserPath(pattern: string): boolean {
  return /%[uh]/.test(pattern.replace(/%%/g, ''));
}

/** Expands %u, %h and %%; the username must already be a plausible account name (no "/"). */
export function expandAuthorizedKeysPath(pattern: string, values: { user: string; home: string }): string {
  return pattern.replace(/%([uh%])/g, (_, t: string) => (t === 'u' ? values.user : t === 'h' ? values.home.replace(/\/+$/, '') : '%'));
}
