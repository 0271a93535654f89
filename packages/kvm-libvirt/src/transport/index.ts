/**
 * libvirt URIs (as virsh reads them) and the dialers behind them: unix, TCP, TLS, SSH.
 */

export * from './dialers';
export * from './uri';
