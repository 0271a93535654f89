/**
 * Security labels: every stacked live label (DOMAIN_GET_SECURITY_LABEL_LIST), the definition's
 * `<seclabel>` elements, the host's security models, and setting a label on an inactive guest.
 */

import {
  type CallOptions,
  type HostSecurityModel,
  hvkitError,
  type LabelsCapability,
  type SecurityLabel,
} from '@hvkit/core';
import { type AdapterContext, type DomainHandle, domainHandle, domainXml, rpcOptions } from '../context';
import { ADAPTER_ID } from '../errors';
import { parseDomainXmlDetails } from '../mapping/domain';
import { liveSecurityLabels, setDomainSeclabel } from '../mapping/seclabel';
import { DOMAIN_XML } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { readHost } from './inventory';

async function labelsOf(
  ctx: AdapterContext,
  h: DomainHandle,
  options?: CallOptions,
): Promise<SecurityLabel[]> {
  const rpc = rpcOptions(options);
  const configXml = ctx.client.call(
    remoteProcedures.DOMAIN_GET_XML_DESC,
    { dom: h.dom, flags: DOMAIN_XML.INACTIVE | DOMAIN_XML.SECURE },
    rpc,
  );
  const config = parseDomainXmlDetails(await configXml, { labelSource: 'config' }).seclabels;
  if (!h.active) return config;
  const [list, liveXml, caps] = await Promise.all([
    ctx.client.call(remoteProcedures.DOMAIN_GET_SECURITY_LABEL_LIST, { dom: h.dom }, rpc),
    domainXml(ctx, h.dom, false, options),
    ctx.capabilities(options),
  ]);
  const live = liveSecurityLabels({
    labels: list.labels,
    models: caps.parsed.secmodels.map((m) => m.model),
    xmlLabels: parseDomainXmlDetails(liveXml, { labelSource: 'live' }).seclabels,
  });
  return [...live, ...config];
}

const LIBVIRT_MODELS: readonly string[] = ['selinux', 'apparmor', 'dac', 'none'];

/** The labels capability. */
export function createLabels(ctx: AdapterContext): LabelsCapability {
  return {
    async get(ref, options?: CallOptions): Promise<SecurityLabel[]> {
      const h = await domainHandle(ctx, ref, 'labels.get', options);
      return labelsOf(ctx, h, options);
    },
    async hostModels(options?: CallOptions): Promise<HostSecurityModel[]> {
      return (await readHost(ctx, options)).securityModels;
    },
    async set(ref, label: SecurityLabel, options?: CallOptions): Promise<SecurityLabel[]> {
      if (typeof label !== 'object' || label === null) throw new TypeError('label must be an object.');
      if (!LIBVIRT_MODELS.includes(label.model)) {
        throw hvkitError('UNSUPPORTED', `libvirt has no security model ${JSON.stringify(label.model)}.`, {
          adapter: ADAPTER_ID,
          operation: 'labels.set',
          details: { field: 'model' },
        });
      }
      const h = await domainHandle(ctx, ref, 'labels.set', options);
      const xml = await ctx.client.call(
        remoteProcedures.DOMAIN_GET_XML_DESC,
        { dom: h.dom, flags: DOMAIN_XML.INACTIVE | DOMAIN_XML.SECURE },
        rpcOptions(options),
      );
      // Validates the label (INVALID_ARGUMENT) before any state check or change.
      const updated = setDomainSeclabel(xml, label);
      if (h.active) {
        throw hvkitError('CONFLICT', 'Security labels can only be set on a stopped (inactive) guest.', {
          adapter: ADAPTER_ID,
          operation: 'labels.set',
        });
      }
      await ctx.client.call(remoteProcedures.DOMAIN_DEFINE_XML, { xml: updated }, rpcOptions(options));
      return labelsOf(ctx, h, options);
    },
  };
}
