#!/usr/bin/env bash
# Re-records the SOAP bodies in this folder from a private govmomi vcsim (HVKIT_VCSIM_BIN, built by
# scripts/peers/vcsim.sh), so the shared peer's state is never changed. Usage: ./capture.sh
# Session keys are replaced by a fixed uuid and the simulator's temp path by /tmp/vcsim.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
: "${HVKIT_VCSIM_BIN:?set HVKIT_VCSIM_BIN (scripts/peers/vcsim.sh start writes it to .peers/env)}"
WORK=$(mktemp -d /tmp/hvkit-vcsim-samples.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # NAME ARGS...: starts a plain-http instance, sets URL_<NAME>
  local name=$1
  shift
  mkdir -p "$WORK/$name/tmp"
  TMPDIR="$WORK/$name/tmp" "$HVKIT_VCSIM_BIN" "$@" -tls=false -listen 127.0.0.1:0 -username user -password pass \
    -ready-file "$WORK/$name/ready" >"$WORK/$name/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [[ -s $WORK/$name/ready ]] && break; sleep 0.1; done
  printf -v "URL_$name" '%s' "$(sed -n 's/^url=//p' "$WORK/$name/ready")"
}
start vpx -model vpx -dc 1 -cluster 2 -host 1 -standalone-host 1 -vm 3
start esx -model esx -vm 2

URL=
JAR=
envelope() {
  printf '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>' "$1"
}
# post FILE BODY [nocookie]: one SOAP call; the response body goes to FILE (normalised), its status is printed.
post() {
  local out=$1 body=$2 cookies=(-b "$JAR" -c "$JAR")
  [[ ${3:-} == nocookie ]] && cookies=()
  local status
  status=$(curl -sS "${cookies[@]}" -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: text/xml; charset="utf-8"' \
    -H 'SOAPAction: urn:vim25/6.5' --data-binary "$(envelope "$body")" "$URL")
  if [[ $out != - ]]; then
    local key
    key=$(awk '$6 == "vmware_soap_session" { print $7 }' "$JAR" 2>/dev/null | tail -1)
    [[ -n $key ]] || key=no-session-key
    sed -E -e "s/$key/00000000-0000-4000-8000-000000000000/g" \
      -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\]/00000000-0000-4000-8000-000000000000]/g' \
      -e "s#$WORK/[a-z]+/tmp#/tmp/vcsim#g" "$WORK/body" >"$out"
    echo "$status $out"
  fi
}
retrieve() { # PC SPEC: RetrievePropertiesEx body
  printf '<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">%s</_this><specSet>%s</specSet><options></options></RetrievePropertiesEx>' "$1" "$2"
}
VM_PATHS=""
for p in name config.uuid config.instanceUuid runtime.powerState config.hardware.numCPU config.hardware.memoryMB \
  guest.guestId runtime.host config.cpuAllocation config.memoryAllocation resourceConfig config.hardware.device; do
  VM_PATHS+="<pathSet>$p</pathSet>"
done
view_spec() { # VIEW: all VMs of a container view
  printf '<propSet><type>VirtualMachine</type>%s</propSet><objectSet><obj type="ContainerView">%s</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path></selectSet></objectSet>' "$VM_PATHS" "$1"
}

# ---- vCenter model ----
URL=$URL_vpx JAR=$WORK/vpx/jar
curl -sS "${URL%/sdk}/sdk/vimServiceVersions.xml" >vimServiceVersions.xml
post service-content-vpx.xml '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'
post fault-invalid-login.xml '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>user</userName><password>wrong</password></Login>'
post fault-not-authenticated.xml '<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>' nocookie
post retrieve-missing-not-authenticated.xml "$(retrieve propertyCollector '<propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.powerState</pathSet></propSet><objectSet><obj type="VirtualMachine">vm-51</obj></objectSet>')" nocookie
post current-session-none.xml "$(retrieve propertyCollector '<propSet><type>SessionManager</type><pathSet>currentSession</pathSet></propSet><objectSet><obj type="SessionManager">SessionManager</obj></objectSet>')" nocookie
post login.xml '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>user</userName><password>pass</password></Login>'
post current-session.xml "$(retrieve propertyCollector '<propSet><type>SessionManager</type><pathSet>currentSession</pathSet></propSet><objectSet><obj type="SessionManager">SessionManager</obj></objectSet>')"
post current-time.xml '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>'
post create-container-view.xml '<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>'
post - '<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>'
VIEW=$(sed -n 's/.*<returnval type="ContainerView">\([^<]*\)<.*/\1/p' "$WORK/body")
post retrieve-vms-vpx.xml "$(retrieve propertyCollector "$(view_spec "$VIEW")")"
post fault-invalid-argument.xml "$(retrieve propertyCollector '<propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type="Folder">group-d1</obj><skip>true</skip><selectSet><type>Folder</type><path>childEntity</path></selectSet></objectSet>')"
post fault-managed-object-not-found.xml "$(retrieve propertyCollector '<propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type="VirtualMachine">vm-nope</obj></objectSet>')"
post fault-method-not-found.xml '<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>1</token></ContinueRetrievePropertiesEx>'
post fault-invalid-request.xml '<SetCustomValue xmlns="urn:vim25"><_this type="VirtualMachine">vm-51</_this><key>a</key><value>b</value></SetCustomValue>'
post retrieve-missing-invalid-property.xml "$(retrieve propertyCollector '<propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>config.bogus</pathSet></propSet><objectSet><obj type="VirtualMachine">vm-51</obj></objectSet>')"
post - '<PowerOnVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-51</_this></PowerOnVM_Task>'
TASK=$(sed -n 's/.*<returnval type="Task">\([^<]*\)<.*/\1/p' "$WORK/body")
post task-info-error.xml "$(retrieve propertyCollector "<propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"Task\">$TASK</obj></objectSet>")"
post create-snapshot-task.xml '<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-51</_this><name>s1</name><description>d</description><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>'
TASK=$(sed -n 's/.*<returnval type="Task">\([^<]*\)<.*/\1/p' create-snapshot-task.xml)
post task-state-success.xml "$(retrieve propertyCollector "<propSet><type>Task</type><pathSet>info.state</pathSet><pathSet>info.progress</pathSet><pathSet>info.cancelable</pathSet><pathSet>info.result</pathSet><pathSet>info.error</pathSet></propSet><objectSet><obj type=\"Task\">$TASK</obj></objectSet>")"
post fault-cancel-task-method-not-found.xml "<CancelTask xmlns=\"urn:vim25\"><_this type=\"Task\">$TASK</_this></CancelTask>"
post logout.xml '<Logout xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Logout>'

# ---- ESX model (standard network backing) ----
URL=$URL_esx JAR=$WORK/esx/jar
post service-content-esx.xml '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'
post - '<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this><userName>user</userName><password>pass</password></Login>'
post - '<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">ha-folder-root</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>'
VIEW=$(sed -n 's/.*<returnval type="ContainerView">\([^<]*\)<.*/\1/p' "$WORK/body")
post retrieve-vms-esx.xml "$(retrieve ha-property-collector "$(view_spec "$VIEW")")"
