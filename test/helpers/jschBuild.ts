// The JSch harness build moved to the lab (deploy/ must not import test/); clients.ts still imports it from here.
export { jschClasspath } from '../../deploy/lab/netns/jschBuild.js';
