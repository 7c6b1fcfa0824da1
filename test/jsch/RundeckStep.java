/*
 * RundeckStep — a test client that talks SSH the way Rundeck's JSch node executor
 * (jsch-ssh) and scp file copier (jsch-scp) do for ONE script step.
 * Written from what Rundeck puts on the wire (docs/rundeck.md); it is not Rundeck code.
 *
 * Java 17, single file, only JSch on the classpath (Debian libjsch-java,
 * /usr/share/java/jsch.jar, banner SSH-2.0-JSCH-0.1.5x):
 *
 *   javac -cp /usr/share/java/jsch.jar -d /tmp/jschbuild test/jsch/RundeckStep.java
 *   java  -cp /usr/share/java/jsch.jar:/tmp/jschbuild RundeckStep \
 *         --host 127.0.0.1 --port 2222 --user rundeck --key id_rsa \
 *         --mode step --script ./s.sh --execid 12345 [--node gw] [--args "a b"] \
 *         [--env RD_JOB_EXECID=12345 ...] [--connect-timeout 10000] [--verbose]
 *   java ... RundeckStep ... --mode exec --command 'echo hi' [--env K=V ...]
 *   java ... RundeckStep ... --mode sftp --script LOCAL --command REMOTE   (put, then get to LOCAL.back)
 *   java ... RundeckStep --host .. --port .. --user .. --key .. [--node ..] --mode server
 *
 * Profile: --profile jsch-0.1.55 (the default and the only one this harness speaks):
 * Rundeck 2.x-5.9's jsch-ssh / jsch-scp executors on com.jcraft JSch 0.1.55 (Debian's
 * jar announces itself as SSH-2.0-JSCH-0.1.54). The sshj profile (Rundeck 4.16+'s default
 * executor) is emulated with the ssh2 client in test/helpers/sshjProfile.ts instead:
 * this jar cannot do curve25519.
 *
 * Flags: --host --port (default 22) --user --key (RSA PEM private key) --mode step|exec|sftp|server
 *        --script (step) --execid (step, default 1) --node (default "gw") --args (step)
 *        --command (exec) --env K=V (repeatable; when given, one setEnv per variable is sent
 *        on every exec channel, like Rundeck's ssh-send-env=true; never on the scp channel)
 *        --connect-timeout ms (default 10000; used for session.connect and channel.connect,
 *        so JSch sends env/exec with want-reply=1) --verbose (JSch log to stderr).
 *        --server-alive-interval s (default 0 = off) and --server-alive-count-max n (default 1):
 *        Rundeck's ssh-config-ServerAliveInterval / ServerAliveCountMax node attributes, i.e.
 *        session.setServerAliveInterval(s * 1000): after s seconds without a packet from the
 *        server JSch sends GLOBAL_REQUEST keepalive@jcraft.com (want-reply 1); more than n
 *        unanswered in a row end the session.
 *
 * What goes on the wire — every operation is a NEW Session (TCP connection) with ONE channel:
 *   step: (1) exec "scp -t /tmp/<n>-<execid>-<node>-dispatch-script.tmp.sh" (path unquoted):
 *             read \0, send "C0644 <len> <basename>\n", read \0, send bytes + \0, read \0,
 *             then disconnect at once: no EOF, exit status never read (JSch/Ant behaviour).
 *         (2) exec "chmod +x <path>"  (3) exec "<path> <args>"  (4) exec "rm -f <path>"
 *   exec: one exec connection running --command.
 *   Exec channels: setPty(false), no stdin stream (so JSch sends no EOF), stdout/stderr
 *   collected, read until channel.isClosed(), then getExitStatus().
 *
 * Output (stdout, one JSON object per line):
 *   {"op":"scp","path":"...","bytes":N,"exit":0}
 *   {"op":"exec","command":"...","exit":N,"stdout":"...","stderr":"..."}
 *   {"op":"done","exit":<exit status of the script (step) or of the command (exec)>}
 *   {"op":"error","message":"..."}   (on an exception; process exits 2)
 * Process exit code: 0 when every operation completed (whatever the script's own exit
 * status), 2 on an exception or bad usage.
 *
 * Server mode (--mode server): connection flags (host/port/user/key/node/connect-timeout)
 * come from the command line; then one request per stdin line, TAB-separated:
 *
 *   <mode> TAB <execid> TAB <script-path-or-command> TAB <args> [TAB K=V]...
 *
 *   mode    "step" or "exec"
 *   execid  execution id used in the remote file name (step); ignored by exec (use "-")
 *   target  local script path (step) or the remote command line (exec)
 *   args    arguments appended to the script command line (step), or appended to the
 *           command after a space (exec); may be empty (two adjacent TABs)
 *   K=V     zero or more env vars, one field each, sent as setEnv on the exec channels
 *   Within a field, the escapes \t \n \r \\ are decoded (so fields can hold tabs/newlines).
 *   Blank lines and lines starting with '#' are ignored. EOF on stdin ends the process (exit 0).
 *
 * For each request exactly one line is written and flushed:
 *   {"op":"result","ok":true,"exit":<script/command exit>,"ops":[<op objects as above>]}
 *   {"op":"result","ok":false,"message":"...","ops":[<ops completed before the failure>]}
 */

import com.jcraft.jsch.ChannelExec;
import com.jcraft.jsch.ChannelSftp;
import com.jcraft.jsch.JSch;
import com.jcraft.jsch.JSchException;
import com.jcraft.jsch.Logger;
import com.jcraft.jsch.Session;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public final class RundeckStep {

    /** Connection parameters shared by all operations. */
    static final class Conn {
        String host;
        int port = 22;
        String user;
        String key;
        String node = "gw";
        int connectTimeout = 10000;
        int serverAliveIntervalSeconds = 0;
        int serverAliveCountMax = 1;
    }

    /** The one client profile this harness reproduces (see the header). */
    static final String PROFILE = "jsch-0.1.55";

    /** Thrown for usage problems. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;
        UsageException(String m) { super(m); }
    }

    /** Thrown when a step fails; carries the op lines produced so far. */
    static final class StepException extends Exception {
        private static final long serialVersionUID = 1L;
        final List<String> ops;
        StepException(String m, Throwable cause, List<String> ops) { super(m, cause); this.ops = ops; }
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private static PrintStream out;

    public static void main(String[] argv) {
        out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        String mode = null;
        Conn c = new Conn();
        String script = null, execid = "1", args = "", command = null;
        Map<String, String> env = new LinkedHashMap<>();
        try {
            for (int i = 0; i < argv.length; i++) {
                String f = argv[i];
                if (f.equals("--verbose")) {
                    JSch.setLogger(new StderrLogger());
                    continue;
                }
                if (!f.startsWith("--")) throw new UsageException("unexpected argument: " + f);
                if (i + 1 >= argv.length) throw new UsageException("missing value for " + f);
                String v = argv[++i];
                switch (f) {
                    case "--host": c.host = v; break;
                    case "--port": c.port = parseInt(f, v); break;
                    case "--user": c.user = v; break;
                    case "--key": c.key = v; break;
                    case "--node": c.node = v; break;
                    case "--connect-timeout": c.connectTimeout = parseInt(f, v); break;
                    case "--server-alive-interval": c.serverAliveIntervalSeconds = parseInt(f, v); break;
                    case "--server-alive-count-max": c.serverAliveCountMax = parseInt(f, v); break;
                    case "--profile":
                        if (!v.equals(PROFILE))
                            throw new UsageException("unknown --profile " + v + ": this harness speaks only " + PROFILE
                                    + " (the sshj profile is test/helpers/sshjProfile.ts)");
                        break;
                    case "--mode": mode = v; break;
                    case "--script": script = v; break;
                    case "--execid": execid = v; break;
                    case "--args": args = v; break;
                    case "--command": command = v; break;
                    case "--env": putEnv(env, v); break;
                    default: throw new UsageException("unknown flag: " + f);
                }
            }
            if (c.host == null || c.user == null || c.key == null)
                throw new UsageException("--host, --user and --key are required");
            if (mode == null) throw new UsageException("--mode step|exec|sftp|server is required");

            switch (mode) {
                case "step": {
                    if (script == null) throw new UsageException("--mode step needs --script");
                    int exit = runStep(c, script, execid, args, env, RundeckStep::printLine);
                    printLine("{\"op\":\"done\",\"exit\":" + exit + "}");
                    System.exit(0);
                    break;
                }
                case "exec": {
                    if (command == null) throw new UsageException("--mode exec needs --command");
                    int exit = runExecMode(c, command, env, RundeckStep::printLine);
                    printLine("{\"op\":\"done\",\"exit\":" + exit + "}");
                    System.exit(0);
                    break;
                }
                case "sftp": {
                    // Not a Rundeck path (jsch-ssh never uses SFTP): JSch's own ChannelSftp,
                    // so every client profile passes the same sftp check.
                    if (script == null || command == null) throw new UsageException("--mode sftp needs --script LOCAL and --command REMOTE");
                    sftpRoundTrip(c, script, command);
                    printLine("{\"op\":\"done\",\"exit\":0}");
                    System.exit(0);
                    break;
                }
                case "server":
                    serverLoop(c);
                    System.exit(0);
                    break;
                default:
                    throw new UsageException("unknown mode: " + mode);
            }
        } catch (StepException e) {
            printError(e.getCause() != null ? e.getCause() : e);
            System.exit(2);
        } catch (Throwable t) {
            printError(t);
            System.exit(2);
        }
    }

    // ------------------------------------------------------------------ operations

    interface Sink { void accept(String jsonLine); }

    /** The four-connection script step. Returns the script's exit status. */
    static int runStep(Conn c, String script, String execid, String args,
                       Map<String, String> env, Sink sink) throws StepException {
        List<String> ops = new ArrayList<>();
        Sink rec = line -> { ops.add(line); sink.accept(line); };
        try {
            byte[] content = Files.readAllBytes(Paths.get(script));
            int n = 1 + RANDOM.nextInt(9999);
            String remote = "/tmp/" + n + "-" + execid + "-" + c.node + "-dispatch-script.tmp.sh";

            scpUpload(c, remote, content);
            rec.accept("{\"op\":\"scp\",\"path\":" + q(remote) + ",\"bytes\":" + content.length
                    + ",\"exit\":0}");

            ExecResult chmod = exec(c, "chmod +x " + remote, env);
            rec.accept(chmod.json());

            String cmd = (args == null || args.isEmpty()) ? remote : remote + " " + args;
            ExecResult run = exec(c, cmd, env);
            rec.accept(run.json());

            ExecResult rm = exec(c, "rm -f " + remote, env);
            rec.accept(rm.json());

            return run.exit;
        } catch (Exception e) {
            throw new StepException(messageOf(e), e, ops);
        }
    }

    /** Puts LOCAL to REMOTE, then gets REMOTE back to LOCAL + ".back", over one sftp channel. */
    static void sftpRoundTrip(Conn c, String local, String remote) throws Exception {
        Session s = openSession(c);
        try {
            ChannelSftp sftp = (ChannelSftp) s.openChannel("sftp");
            sftp.connect(c.connectTimeout);
            try {
                sftp.put(local, remote);
                printLine("{\"op\":\"sftp-put\",\"path\":" + q(remote) + "}");
                sftp.get(remote, local + ".back");
                printLine("{\"op\":\"sftp-get\",\"path\":" + q(remote) + "}");
            } finally {
                sftp.disconnect();
            }
        } finally {
            s.disconnect();
        }
    }

    static int runExecMode(Conn c, String command, Map<String, String> env, Sink sink)
            throws StepException {
        List<String> ops = new ArrayList<>();
        try {
            ExecResult r = exec(c, command, env);
            ops.add(r.json());
            sink.accept(r.json());
            return r.exit;
        } catch (Exception e) {
            throw new StepException(messageOf(e), e, ops);
        }
    }

    /** A fresh session configured like Rundeck's SSHTaskBuilder. */
    static Session openSession(Conn c) throws JSchException {
        JSch jsch = new JSch();
        jsch.addIdentity(c.key);
        Session s = jsch.getSession(c.user, c.host, c.port);
        s.setConfig("StrictHostKeyChecking", "no");
        s.setConfig("PreferredAuthentications", "publickey,password,keyboard-interactive");
        s.setConfig("MaxAuthTries", "1");
        if (c.serverAliveIntervalSeconds > 0) {
            s.setServerAliveInterval(c.serverAliveIntervalSeconds * 1000);
            s.setServerAliveCountMax(c.serverAliveCountMax);
        }
        s.connect(c.connectTimeout);
        return s;
    }

    /** scp sink protocol over "scp -t <path>", exactly as Ant's ScpToMessage does it. */
    static void scpUpload(Conn c, String remote, byte[] content) throws Exception {
        Session s = openSession(c);
        ChannelExec ch = null;
        try {
            ch = (ChannelExec) s.openChannel("exec");
            ch.setCommand("scp -t " + remote);
            OutputStream os = ch.getOutputStream();
            InputStream is = ch.getInputStream();
            ch.connect(c.connectTimeout);

            waitForAck(is);
            String name = remote.substring(remote.lastIndexOf('/') + 1);
            String header = "C0644 " + content.length + " " + name + "\n";
            os.write(header.getBytes(StandardCharsets.UTF_8));
            os.flush();
            waitForAck(is);
            os.write(content);
            os.write(0);
            os.flush();
            waitForAck(is);
            // No EOF, no exit status: just drop the channel and the connection.
        } finally {
            if (ch != null) ch.disconnect();
            s.disconnect();
        }
    }

    static void waitForAck(InputStream is) throws IOException {
        int b = is.read();
        if (b == 0) return;
        if (b == -1) throw new IOException("No response from server");
        StringBuilder sb = new StringBuilder();
        int ch;
        while ((ch = is.read()) != -1 && ch != '\n') sb.append((char) ch);
        if (b == 1) throw new IOException("server indicated an error: " + sb);
        if (b == 2) throw new IOException("server indicated a fatal error: " + sb);
        throw new IOException("unknown response, code " + b + " message: " + sb);
    }

    static final class ExecResult {
        String command;
        int exit;
        String stdout;
        String stderr;

        String json() {
            return "{\"op\":\"exec\",\"command\":" + q(command) + ",\"exit\":" + exit
                    + ",\"stdout\":" + q(stdout) + ",\"stderr\":" + q(stderr) + "}";
        }
    }

    /** One command on a new connection, like ExtSSHExec: no pty, no stdin, wait for CLOSE. */
    static ExecResult exec(Conn c, String command, Map<String, String> env) throws Exception {
        Session s = openSession(c);
        ChannelExec ch = null;
        try {
            ch = (ChannelExec) s.openChannel("exec");
            ch.setCommand(command);
            for (Map.Entry<String, String> e : env.entrySet()) ch.setEnv(e.getKey(), e.getValue());
            ch.setPty(false);
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            ByteArrayOutputStream e = new ByteArrayOutputStream();
            // JSch's session thread writes straight into these; no input stream is set,
            // so JSch never sends stdin EOF.
            ch.setOutputStream(o, true);
            ch.setErrStream(e, true);
            ch.connect(c.connectTimeout);
            while (!ch.isClosed()) {
                if (!s.isConnected()) break;
                Thread.sleep(10);
            }
            ExecResult r = new ExecResult();
            r.command = command;
            r.exit = ch.getExitStatus();
            r.stdout = o.toString(StandardCharsets.UTF_8);
            r.stderr = e.toString(StandardCharsets.UTF_8);
            return r;
        } finally {
            if (ch != null) ch.disconnect();
            s.disconnect();
        }
    }

    // ------------------------------------------------------------------ server mode

    static void serverLoop(Conn c) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank() || line.startsWith("#")) continue;
            printLine(handleRequest(c, line));
        }
    }

    static String handleRequest(Conn c, String line) {
        List<String> ops = new ArrayList<>();
        Sink collect = ops::add;
        try {
            String[] raw = line.split("\t", -1);
            if (raw.length < 3) throw new UsageException("need at least mode, execid, target fields");
            String[] f = new String[raw.length];
            for (int i = 0; i < raw.length; i++) f[i] = unescape(raw[i]);
            String mode = f[0].trim();
            String execid = f[1];
            String target = f[2];
            String args = f.length > 3 ? f[3] : "";
            Map<String, String> env = new LinkedHashMap<>();
            for (int i = 4; i < f.length; i++) if (!f[i].isEmpty()) putEnv(env, f[i]);
            int exit;
            if (mode.equals("step")) {
                exit = runStep(c, target, execid, args, env, collect);
            } else if (mode.equals("exec")) {
                String cmd = args.isEmpty() ? target : target + " " + args;
                exit = runExecMode(c, cmd, env, collect);
            } else {
                throw new UsageException("unknown mode: " + mode);
            }
            return "{\"op\":\"result\",\"ok\":true,\"exit\":" + exit + ",\"ops\":[" + String.join(",", ops) + "]}";
        } catch (StepException e) {
            return "{\"op\":\"result\",\"ok\":false,\"message\":" + q(e.getMessage())
                    + ",\"ops\":[" + String.join(",", e.ops) + "]}";
        } catch (Throwable t) {
            return "{\"op\":\"result\",\"ok\":false,\"message\":" + q(messageOf(t))
                    + ",\"ops\":[" + String.join(",", ops) + "]}";
        }
    }

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '\\' && i + 1 < s.length()) {
                char nx = s.charAt(++i);
                switch (nx) {
                    case 't': sb.append('\t'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case '\\': sb.append('\\'); break;
                    default: sb.append('\\').append(nx);
                }
            } else {
                sb.append(ch);
            }
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------ helpers

    static void putEnv(Map<String, String> env, String kv) throws UsageException {
        int eq = kv.indexOf('=');
        if (eq <= 0) throw new UsageException("env must be K=V: " + kv);
        env.put(kv.substring(0, eq), kv.substring(eq + 1));
    }

    static int parseInt(String flag, String v) throws UsageException {
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " needs a number: " + v);
        }
    }

    static String messageOf(Throwable t) {
        String m = t.getMessage();
        if (m == null || m.isEmpty()) return t.getClass().getName();
        // e.g. NoSuchFileException's message is only the path: name the exception too.
        if (t instanceof java.nio.file.FileSystemException) return t.getClass().getSimpleName() + ": " + m;
        return m;
    }

    static void printError(Throwable t) {
        printLine("{\"op\":\"error\",\"message\":" + q(messageOf(t)) + "}");
    }

    static synchronized void printLine(String s) {
        out.println(s);
        out.flush();
    }

    /** JSON string literal, escaped by hand. */
    static String q(String s) {
        if (s == null) return "null";
        StringBuilder sb = new StringBuilder(s.length() + 2);
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            switch (ch) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (ch < 0x20 || ch == 0x7f || ch == '\u2028' || ch == '\u2029') {
                        sb.append(String.format("\\u%04x", (int) ch));
                    } else {
                        sb.append(ch);
                    }
            }
        }
        sb.append('"');
        return sb.toString();
    }

    static final class StderrLogger implements Logger {
        public boolean isEnabled(int level) { return true; }
        public void log(int level, String message) {
            System.err.println("jsch[" + level + "] " + message);
        }
    }
}
