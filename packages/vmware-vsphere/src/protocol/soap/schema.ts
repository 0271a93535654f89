/**
 * A small table of the vim25 data object types hvkit reads and writes: each type's base type, its fields in
 * schema order, which fields are arrays and which are polymorphic (carry `xsi:type`). The decoder uses it to
 * type values (`xsd:int` → number, `ArrayOfX` → array, a field declared `[]` → array even with one element);
 * the envelope builder uses it to order fields and to insist on `_type` where the server needs `xsi:type`.
 *
 * Types that are not in the table still decode: as the declared base type's fields plus the unknown
 * fields as raw values, keeping the `xsi:type` name in `_type` (newer servers add types all the time).
 * Field facts come from the vSphere Web Services API (as listed in govmomi's `vim25/types`).
 */

/** A managed object reference: `<obj type="VirtualMachine">vm-42</obj>`. Treat `value` as opaque. */
export interface MoRef {
  readonly type: string;
  readonly value: string;
}

/** A decoded data object: `_type` is its vim25 type (the `xsi:type`, or the declared type when absent). */
export interface DataObject {
  _type: string;
  [field: string]: unknown;
}

/** How a value is represented on the wire. */
export type ValueKind =
  | 'string'
  | 'int'
  | 'long'
  | 'boolean'
  | 'float'
  | 'dateTime'
  | 'base64'
  | 'moref'
  | 'any'
  | 'enum'
  | 'data';

/** One field of a data object type. */
export interface VimFieldInfo {
  /** Element name. */
  readonly name: string;
  /** Declared type: `xsd:int`, `ManagedObjectReference`, an enum name or a data object type name. */
  readonly type: string;
  readonly kind: ValueKind;
  /** The field repeats (a `[]` field): always decoded to an array. */
  readonly array: boolean;
  /** The value's actual type may be a subtype, so requests must carry `xsi:type`. */
  readonly polymorphic: boolean;
  /** Position in schema order (inherited fields first). */
  readonly index: number;
}

/** A data object type of the table. */
export interface VimTypeInfo {
  readonly name: string;
  /** The base type (`undefined` for DynamicData and MethodFault). */
  readonly base: string | undefined;
  /** All fields including inherited ones, by element name. */
  readonly fields: ReadonlyMap<string, VimFieldInfo>;
}

// Field syntax: `name:Type`, `name:Type[]` (array), `name:Type+` (polymorphic), `name:Type[]+`.
// Shorthands: string int long short byte boolean float double dateTime base64 any MoRef.
const TABLE: Readonly<Record<string, readonly [base: string | null, fields: string]>> = {
  DynamicData: [null, ''],

  // Session and service.
  ServiceContent: [
    'DynamicData',
    'rootFolder:MoRef propertyCollector:MoRef viewManager:MoRef about:AboutInfo setting:MoRef userDirectory:MoRef ' +
      'sessionManager:MoRef authorizationManager:MoRef serviceManager:MoRef perfManager:MoRef ' +
      'scheduledTaskManager:MoRef alarmManager:MoRef eventManager:MoRef taskManager:MoRef extensionManager:MoRef ' +
      'customizationSpecManager:MoRef guestCustomizationManager:MoRef customFieldsManager:MoRef accountManager:MoRef ' +
      'diagnosticManager:MoRef licenseManager:MoRef searchIndex:MoRef fileManager:MoRef ' +
      'datastoreNamespaceManager:MoRef virtualDiskManager:MoRef virtualizationManager:MoRef snmpSystem:MoRef ' +
      'vmProvisioningChecker:MoRef vmCompatibilityChecker:MoRef ovfManager:MoRef ipPoolManager:MoRef ' +
      'dvSwitchManager:MoRef hostProfileManager:MoRef clusterProfileManager:MoRef complianceManager:MoRef ' +
      'localizationManager:MoRef storageResourceManager:MoRef guestOperationsManager:MoRef ' +
      'overheadMemoryManager:MoRef certificateManager:MoRef ioFilterManager:MoRef vStorageObjectManager:MoRef ' +
      'hostSpecManager:MoRef cryptoManager:MoRef healthUpdateManager:MoRef failoverClusterConfigurator:MoRef ' +
      'failoverClusterManager:MoRef tenantManager:MoRef siteInfoManager:MoRef storageQueryManager:MoRef',
  ],
  AboutInfo: [
    'DynamicData',
    'name:string fullName:string vendor:string version:string build:string localeVersion:string ' +
      'localeBuild:string osType:string productLineId:string apiType:string apiVersion:string ' +
      'instanceUuid:string licenseProductName:string licenseProductVersion:string',
  ],
  UserSession: [
    'DynamicData',
    'key:string userName:string fullName:string loginTime:dateTime lastActiveTime:dateTime locale:string ' +
      'messageLocale:string extensionSession:boolean ipAddress:string userAgent:string callCount:long',
  ],

  // Property collector.
  PropertyFilterSpec: [
    'DynamicData',
    'propSet:PropertySpec[] objectSet:ObjectSpec[] reportMissingObjectsInResults:boolean',
  ],
  PropertySpec: ['DynamicData', 'type:string all:boolean pathSet:string[]'],
  ObjectSpec: ['DynamicData', 'obj:MoRef skip:boolean selectSet:SelectionSpec[]+'],
  SelectionSpec: ['DynamicData', 'name:string'],
  TraversalSpec: ['SelectionSpec', 'type:string path:string skip:boolean selectSet:SelectionSpec[]+'],
  RetrieveOptions: ['DynamicData', 'maxObjects:int'],
  RetrieveResult: ['DynamicData', 'token:string objects:ObjectContent[]'],
  ObjectContent: ['DynamicData', 'obj:MoRef propSet:DynamicProperty[] missingSet:MissingProperty[]'],
  DynamicProperty: ['DynamicData', 'name:string val:any'],
  MissingProperty: ['DynamicData', 'path:string fault:LocalizedMethodFault'],
  LocalizedMethodFault: ['DynamicData', 'fault:MethodFault+ localizedMessage:string'],
  LocalizableMessage: ['DynamicData', 'key:string arg:KeyAnyValue[] message:string'],
  KeyAnyValue: ['DynamicData', 'key:string value:any'],
  KeyValue: ['DynamicData', 'key:string value:string'],
  OptionValue: ['DynamicData', 'key:string value:any'],
  WaitOptions: ['DynamicData', 'maxWaitSeconds:int maxObjectUpdates:int'],
  UpdateSet: ['DynamicData', 'version:string filterSet:PropertyFilterUpdate[] truncated:boolean'],
  PropertyFilterUpdate: ['DynamicData', 'filter:MoRef objectSet:ObjectUpdate[] missingSet:MissingObject[]'],
  ObjectUpdate: [
    'DynamicData',
    'kind:ObjectUpdateKind obj:MoRef changeSet:PropertyChange[] missingSet:MissingProperty[]',
  ],
  PropertyChange: ['DynamicData', 'name:string op:PropertyChangeOp val:any'],
  MissingObject: ['DynamicData', 'obj:MoRef fault:LocalizedMethodFault'],

  // Tasks.
  TaskInfo: [
    'DynamicData',
    'key:string task:MoRef description:LocalizableMessage name:string descriptionId:string entity:MoRef ' +
      'entityName:string locked:MoRef[] state:TaskInfoState cancelled:boolean cancelable:boolean ' +
      'error:LocalizedMethodFault result:any progress:int reason:TaskReason+ queueTime:dateTime ' +
      'startTime:dateTime completeTime:dateTime eventChainId:int changeTag:string parentTaskKey:string ' +
      'rootTaskKey:string activationId:string',
  ],
  TaskReason: ['DynamicData', ''],
  TaskReasonUser: ['TaskReason', 'userName:string'],
  TaskReasonSystem: ['TaskReason', ''],
  TaskReasonSchedule: ['TaskReason', 'name:string scheduledTask:MoRef'],
  TaskReasonAlarm: ['TaskReason', 'alarmName:string alarm:MoRef entityName:string entity:MoRef'],

  // Resource allocation.
  ResourceAllocationInfo: [
    'DynamicData',
    'reservation:long expandableReservation:boolean limit:long shares:SharesInfo overheadLimit:long',
  ],
  SharesInfo: ['DynamicData', 'shares:int level:SharesLevel'],
  ResourceConfigSpec: [
    'DynamicData',
    'entity:MoRef changeVersion:string lastModified:dateTime cpuAllocation:ResourceAllocationInfo ' +
      'memoryAllocation:ResourceAllocationInfo scaleDescendantsShares:string',
  ],
  StorageIOAllocationInfo: ['DynamicData', 'limit:long shares:SharesInfo reservation:int'],

  // Devices.
  Description: ['DynamicData', 'label:string summary:string'],
  ElementDescription: ['Description', 'key:string'],
  VirtualDevice: [
    'DynamicData',
    'key:int deviceInfo:Description+ backing:VirtualDeviceBackingInfo+ connectable:VirtualDeviceConnectInfo ' +
      'slotInfo:VirtualDeviceBusSlotInfo+ controllerKey:int unitNumber:int',
  ],
  VirtualDeviceConnectInfo: [
    'DynamicData',
    'migrateConnect:string startConnected:boolean allowGuestControl:boolean connected:boolean status:string',
  ],
  VirtualDeviceBusSlotInfo: ['DynamicData', ''],
  VirtualDevicePciBusSlotInfo: ['VirtualDeviceBusSlotInfo', 'pciSlotNumber:int'],
  VirtualDeviceBackingInfo: ['DynamicData', ''],
  VirtualDeviceFileBackingInfo: [
    'VirtualDeviceBackingInfo',
    'fileName:string datastore:MoRef backingObjectId:string',
  ],
  VirtualDeviceDeviceBackingInfo: ['VirtualDeviceBackingInfo', 'deviceName:string useAutoDetect:boolean'],
  VirtualDeviceRemoteDeviceBackingInfo: [
    'VirtualDeviceBackingInfo',
    'deviceName:string useAutoDetect:boolean',
  ],
  VirtualDiskFlatVer2BackingInfo: [
    'VirtualDeviceFileBackingInfo',
    'diskMode:string split:boolean writeThrough:boolean thinProvisioned:boolean eagerlyScrub:boolean ' +
      'uuid:string contentId:string changeId:string parent:VirtualDiskFlatVer2BackingInfo ' +
      'deltaDiskFormat:string digestEnabled:boolean deltaGrainSize:int deltaDiskFormatVariant:string ' +
      'sharing:string keyId:CryptoKeyId',
  ],
  VirtualDiskSparseVer2BackingInfo: [
    'VirtualDeviceFileBackingInfo',
    'diskMode:string split:boolean writeThrough:boolean spaceUsedInKB:long uuid:string contentId:string ' +
      'changeId:string parent:VirtualDiskSparseVer2BackingInfo keyId:CryptoKeyId',
  ],
  VirtualDiskRawDiskMappingVer1BackingInfo: [
    'VirtualDeviceFileBackingInfo',
    'lunUuid:string deviceName:string compatibilityMode:string diskMode:string uuid:string contentId:string ' +
      'changeId:string parent:VirtualDiskRawDiskMappingVer1BackingInfo deltaDiskFormat:string ' +
      'deltaGrainSize:int sharing:string',
  ],
  VirtualDiskSeSparseBackingInfo: [
    'VirtualDeviceFileBackingInfo',
    'diskMode:string writeThrough:boolean uuid:string contentId:string changeId:string ' +
      'parent:VirtualDiskSeSparseBackingInfo deltaDiskFormat:string digestEnabled:boolean grainSize:int ' +
      'keyId:CryptoKeyId',
  ],
  CryptoKeyId: ['DynamicData', 'keyId:string providerId:KeyProviderId'],
  KeyProviderId: ['DynamicData', 'id:string'],
  ID: ['DynamicData', 'id:string'],
  VirtualDisk: [
    'VirtualDevice',
    'capacityInKB:long capacityInBytes:long shares:SharesInfo storageIOAllocation:StorageIOAllocationInfo ' +
      'diskObjectId:string vFlashCacheConfigInfo:VirtualDiskVFlashCacheConfigInfo iofilter:string[] ' +
      'vDiskId:ID nativeUnmanagedLinkedClone:boolean',
  ],
  VirtualEthernetCard: [
    'VirtualDevice',
    'addressType:string macAddress:string wakeOnLanEnabled:boolean ' +
      'resourceAllocation:VirtualEthernetCardResourceAllocation externalId:string uptCompatibilityEnabled:boolean',
  ],
  VirtualE1000: ['VirtualEthernetCard', ''],
  VirtualE1000e: ['VirtualEthernetCard', ''],
  VirtualPCNet32: ['VirtualEthernetCard', ''],
  VirtualVmxnet: ['VirtualEthernetCard', ''],
  VirtualVmxnet2: ['VirtualVmxnet', ''],
  VirtualVmxnet3: ['VirtualVmxnet', ''],
  VirtualVmxnet3Vrdma: ['VirtualVmxnet3', 'deviceProtocol:string'],
  VirtualSriovEthernetCard: [
    'VirtualEthernetCard',
    'allowGuestOSMtuChange:boolean sriovBacking:VirtualSriovEthernetCardSriovBackingInfo',
  ],
  VirtualEthernetCardResourceAllocation: ['DynamicData', 'reservation:long share:SharesInfo limit:long'],
  VirtualEthernetCardNetworkBackingInfo: [
    'VirtualDeviceDeviceBackingInfo',
    'network:MoRef inPassthroughMode:boolean',
  ],
  VirtualEthernetCardDistributedVirtualPortBackingInfo: [
    'VirtualDeviceBackingInfo',
    'port:DistributedVirtualSwitchPortConnection',
  ],
  VirtualEthernetCardOpaqueNetworkBackingInfo: [
    'VirtualDeviceBackingInfo',
    'opaqueNetworkId:string opaqueNetworkType:string',
  ],
  DistributedVirtualSwitchPortConnection: [
    'DynamicData',
    'switchUuid:string portgroupKey:string portKey:string connectionCookie:int',
  ],
  VirtualController: ['VirtualDevice', 'busNumber:int device:int[]'],
  VirtualSCSIController: [
    'VirtualController',
    'hotAddRemove:boolean sharedBus:VirtualSCSISharing scsiCtlrUnitNumber:int',
  ],
  ParaVirtualSCSIController: ['VirtualSCSIController', ''],
  VirtualLsiLogicController: ['VirtualSCSIController', ''],
  VirtualLsiLogicSASController: ['VirtualSCSIController', ''],
  VirtualBusLogicController: ['VirtualSCSIController', ''],
  VirtualIDEController: ['VirtualController', ''],
  VirtualPCIController: ['VirtualController', ''],
  VirtualPS2Controller: ['VirtualController', ''],
  VirtualSIOController: ['VirtualController', ''],
  VirtualSATAController: ['VirtualController', ''],
  VirtualAHCIController: ['VirtualSATAController', ''],
  VirtualNVMEController: ['VirtualController', ''],
  VirtualUSBController: ['VirtualController', 'autoConnectDevices:boolean ehciEnabled:boolean'],
  VirtualUSBXHCIController: ['VirtualController', 'autoConnectDevices:boolean'],
  VirtualCdrom: ['VirtualDevice', ''],
  VirtualCdromIsoBackingInfo: ['VirtualDeviceFileBackingInfo', ''],
  VirtualCdromAtapiBackingInfo: ['VirtualDeviceDeviceBackingInfo', ''],
  VirtualCdromRemoteAtapiBackingInfo: ['VirtualDeviceRemoteDeviceBackingInfo', ''],
  VirtualCdromRemotePassthroughBackingInfo: ['VirtualDeviceRemoteDeviceBackingInfo', 'exclusive:boolean'],
  VirtualFloppy: ['VirtualDevice', ''],
  VirtualKeyboard: ['VirtualDevice', ''],
  VirtualPointingDevice: ['VirtualDevice', ''],
  VirtualPointingDeviceDeviceBackingInfo: ['VirtualDeviceDeviceBackingInfo', 'hostPointingDevice:string'],
  VirtualSerialPort: ['VirtualDevice', 'yieldOnPoll:boolean'],
  VirtualMachineVideoCard: [
    'VirtualDevice',
    'videoRamSizeInKB:long numDisplays:int useAutoDetect:boolean enable3DSupport:boolean ' +
      'use3dRenderer:string graphicsMemorySizeInKB:long',
  ],
  VirtualMachineVMCIDevice: [
    'VirtualDevice',
    'id:long allowUnrestrictedCommunication:boolean filterEnable:boolean ' +
      'filterInfo:VirtualMachineVMCIDeviceFilterInfo',
  ],
  VirtualTPM: [
    'VirtualDevice',
    'endorsementKeyCertificateSigningRequest:base64[] endorsementKeyCertificate:base64[]',
  ],

  // Virtual machine configuration.
  VirtualMachineSnapshotInfo: [
    'DynamicData',
    'currentSnapshot:MoRef rootSnapshotList:VirtualMachineSnapshotTree[]',
  ],
  VirtualMachineSnapshotTree: [
    'DynamicData',
    'snapshot:MoRef vm:MoRef name:string description:string id:int createTime:dateTime ' +
      'state:VirtualMachinePowerState quiesced:boolean backupManifest:string ' +
      'childSnapshotList:VirtualMachineSnapshotTree[] replaySupported:boolean',
  ],
  CustomFieldValue: ['DynamicData', 'key:int'],
  CustomFieldStringValue: ['CustomFieldValue', 'value:string'],
  CustomFieldDef: [
    'DynamicData',
    'key:int name:string type:string managedObjectType:string fieldDefPrivileges:PrivilegePolicyDef ' +
      'fieldInstancePrivileges:PrivilegePolicyDef',
  ],
  VirtualMachineBootOptions: [
    'DynamicData',
    'bootDelay:long enterBIOSSetup:boolean efiSecureBootEnabled:boolean bootRetryEnabled:boolean ' +
      'bootRetryDelay:long bootOrder:VirtualMachineBootOptionsBootableDevice[]+ networkBootProtocol:string',
  ],
  VirtualMachineBootOptionsBootableDevice: ['DynamicData', ''],
  VirtualMachineBootOptionsBootableCdromDevice: ['VirtualMachineBootOptionsBootableDevice', ''],
  VirtualMachineBootOptionsBootableDiskDevice: ['VirtualMachineBootOptionsBootableDevice', 'deviceKey:int'],
  VirtualMachineBootOptionsBootableEthernetDevice: [
    'VirtualMachineBootOptionsBootableDevice',
    'deviceKey:int',
  ],
  VirtualMachineBootOptionsBootableFloppyDevice: ['VirtualMachineBootOptionsBootableDevice', ''],
  VirtualMachineFlagInfo: [
    'DynamicData',
    'disableAcceleration:boolean enableLogging:boolean useToe:boolean runWithDebugInfo:boolean ' +
      'monitorType:string htSharing:string snapshotDisabled:boolean snapshotLocked:boolean ' +
      'diskUuidEnabled:boolean virtualMmuUsage:string virtualExecUsage:string snapshotPowerOffBehavior:string ' +
      'recordReplayEnabled:boolean faultToleranceType:string cbrcCacheEnabled:boolean vvtdEnabled:boolean ' +
      'vbsEnabled:boolean',
  ],
  VirtualMachineFileInfo: [
    'DynamicData',
    'vmPathName:string snapshotDirectory:string suspendDirectory:string logDirectory:string ' +
      'ftMetadataDirectory:string',
  ],
  VirtualMachineConfigSpec: [
    'DynamicData',
    'changeVersion:string name:string version:string createDate:dateTime uuid:string instanceUuid:string ' +
      'npivNodeWorldWideName:long[] npivPortWorldWideName:long[] npivWorldWideNameType:string ' +
      'npivDesiredNodeWwns:short npivDesiredPortWwns:short npivTemporaryDisabled:boolean ' +
      'npivOnNonRdmDisks:boolean npivWorldWideNameOp:string locationId:string guestId:string ' +
      'alternateGuestName:string annotation:string files:VirtualMachineFileInfo tools:ToolsConfigInfo ' +
      'flags:VirtualMachineFlagInfo consolePreferences:VirtualMachineConsolePreferences ' +
      'powerOpInfo:VirtualMachineDefaultPowerOpInfo numCPUs:int vcpuConfig:VirtualMachineVcpuConfig[] ' +
      'numCoresPerSocket:int memoryMB:long memoryHotAddEnabled:boolean cpuHotAddEnabled:boolean ' +
      'cpuHotRemoveEnabled:boolean virtualICH7MPresent:boolean virtualSMCPresent:boolean ' +
      'deviceChange:VirtualDeviceConfigSpec[]+ cpuAllocation:ResourceAllocationInfo ' +
      'memoryAllocation:ResourceAllocationInfo latencySensitivity:LatencySensitivity ' +
      'cpuAffinity:VirtualMachineAffinityInfo memoryAffinity:VirtualMachineAffinityInfo ' +
      'networkShaper:VirtualMachineNetworkShaperInfo cpuFeatureMask:VirtualMachineCpuIdInfoSpec[] ' +
      'extraConfig:OptionValue[]+ swapPlacement:string bootOptions:VirtualMachineBootOptions ' +
      'vAppConfig:VmConfigSpec+ ftInfo:FaultToleranceConfigInfo+ repConfig:ReplicationConfigSpec ' +
      'vAppConfigRemoved:boolean vAssertsEnabled:boolean changeTrackingEnabled:boolean firmware:string ' +
      'maxMksConnections:int guestAutoLockEnabled:boolean managedBy:ManagedByInfo ' +
      'memoryReservationLockedToMax:boolean nestedHVEnabled:boolean vPMCEnabled:boolean ' +
      'scheduledHardwareUpgradeInfo:ScheduledHardwareUpgradeInfo vmProfile:VirtualMachineProfileSpec[]+ ' +
      'messageBusTunnelEnabled:boolean crypto:CryptoSpec+ migrateEncryption:string ' +
      'sgxInfo:VirtualMachineSgxInfo guestMonitoringModeInfo:VirtualMachineGuestMonitoringModeInfo ' +
      'sevEnabled:boolean',
  ],
  VirtualDeviceConfigSpec: [
    'DynamicData',
    'operation:VirtualDeviceConfigSpecOperation fileOperation:VirtualDeviceConfigSpecFileOperation ' +
      'device:VirtualDevice+ profile:VirtualMachineProfileSpec[]+ backing:VirtualDeviceConfigSpecBackingSpec',
  ],

  // Datastore files (restore: search, upload folders).
  HostDatastoreBrowserSearchSpec: [
    'DynamicData',
    'query:FileQuery[]+ details:FileQueryFlags searchCaseInsensitive:boolean matchPattern:string[] ' +
      'sortFoldersFirst:boolean',
  ],
  FileQueryFlags: ['DynamicData', 'fileType:boolean fileSize:boolean modification:boolean fileOwner:boolean'],
  FileQuery: ['DynamicData', ''],
  FolderFileQuery: ['FileQuery', ''],
  HostDatastoreBrowserSearchResults: ['DynamicData', 'datastore:MoRef folderPath:string file:FileInfo[]+'],
  FileInfo: [
    'DynamicData',
    'path:string friendlyName:string fileSize:long modification:dateTime owner:string',
  ],
  FolderFileInfo: ['FileInfo', ''],

  // Hosts, datastores, networks.
  HostHardwareSummary: [
    'DynamicData',
    'vendor:string model:string uuid:string otherIdentifyingInfo:HostSystemIdentificationInfo[] ' +
      'memorySize:long cpuModel:string cpuMhz:int numCpuPkgs:short numCpuCores:short numCpuThreads:short ' +
      'numNics:int numHBAs:int',
  ],
  HostSystemIdentificationInfo: ['DynamicData', 'identifierValue:string identifierType:ElementDescription+'],
  HostPortGroup: [
    'DynamicData',
    'key:string port:HostPortGroupPort[] vswitch:string computedPolicy:HostNetworkPolicy spec:HostPortGroupSpec',
  ],
  HostPortGroupPort: ['DynamicData', 'key:string mac:string[] type:string'],
  HostPortGroupSpec: ['DynamicData', 'name:string vlanId:int vswitchName:string policy:HostNetworkPolicy'],
  HostNetworkPolicy: [
    'DynamicData',
    'security:HostNetworkSecurityPolicy nicTeaming:HostNicTeamingPolicy ' +
      'offloadPolicy:HostNetOffloadCapabilities shapingPolicy:HostNetworkTrafficShapingPolicy',
  ],
  HostNetworkSecurityPolicy: [
    'DynamicData',
    'allowPromiscuous:boolean macChanges:boolean forgedTransmits:boolean',
  ],
  HostNetOffloadCapabilities: [
    'DynamicData',
    'csumOffload:boolean tcpSegmentation:boolean zeroCopyXmit:boolean',
  ],
  HostNetworkTrafficShapingPolicy: [
    'DynamicData',
    'enabled:boolean averageBandwidth:long peakBandwidth:long burstSize:long',
  ],
  DatastoreSummary: [
    'DynamicData',
    'datastore:MoRef name:string url:string capacity:long freeSpace:long uncommitted:long accessible:boolean ' +
      'multipleHostAccess:boolean type:string maintenanceMode:string',
  ],
  DVPortgroupConfigInfo: [
    'DynamicData',
    'key:string name:string numPorts:int distributedVirtualSwitch:MoRef defaultPortConfig:DVPortSetting+ ' +
      'description:string type:string backingType:string policy:DVPortgroupPolicy+ portNameFormat:string ' +
      'scope:MoRef[] vendorSpecificConfig:DistributedVirtualSwitchKeyedOpaqueBlob[] configVersion:string ' +
      'autoExpand:boolean vmVnicNetworkResourcePoolKey:string uplink:boolean transportZoneUuid:string ' +
      'transportZoneName:string logicalSwitchUuid:string segmentId:string',
  ],
  DVPortgroupConfigSpec: [
    'DynamicData',
    'configVersion:string name:string numPorts:int portNameFormat:string defaultPortConfig:DVPortSetting+ ' +
      'description:string type:string backingType:string scope:MoRef[] policy:DVPortgroupPolicy+ ' +
      'vendorSpecificConfig:DistributedVirtualSwitchKeyedOpaqueBlob[] autoExpand:boolean ' +
      'vmVnicNetworkResourcePoolKey:string transportZoneUuid:string transportZoneName:string ' +
      'logicalSwitchUuid:string segmentId:string',
  ],
  DistributedVirtualSwitchKeyedOpaqueBlob: ['DynamicData', 'key:string opaqueData:string'],
  DVPortgroupPolicy: [
    'DynamicData',
    'blockOverrideAllowed:boolean shapingOverrideAllowed:boolean vendorConfigOverrideAllowed:boolean ' +
      'livePortMovingAllowed:boolean portConfigResetAtDisconnect:boolean ' +
      'networkResourcePoolOverrideAllowed:boolean trafficFilterOverrideAllowed:boolean',
  ],
  VMwareDVSPortgroupPolicy: [
    'DVPortgroupPolicy',
    'vlanOverrideAllowed:boolean uplinkTeamingOverrideAllowed:boolean securityPolicyOverrideAllowed:boolean ' +
      'ipfixOverrideAllowed:boolean macManagementOverrideAllowed:boolean',
  ],
  DVPortSetting: [
    'DynamicData',
    'blocked:BoolPolicy vmDirectPathGen2Allowed:BoolPolicy inShapingPolicy:DVSTrafficShapingPolicy ' +
      'outShapingPolicy:DVSTrafficShapingPolicy vendorSpecificConfig:DVSVendorSpecificConfig ' +
      'networkResourcePoolKey:StringPolicy filterPolicy:DvsFilterPolicy',
  ],
  VMwareDVSPortSetting: [
    'DVPortSetting',
    'vlan:VmwareDistributedVirtualSwitchVlanSpec+ qosTag:IntPolicy ' +
      'uplinkTeamingPolicy:VmwareUplinkPortTeamingPolicy securityPolicy:DVSSecurityPolicy ' +
      'ipfixEnabled:BoolPolicy txUplink:BoolPolicy lacpPolicy:VMwareUplinkLacpPolicy ' +
      'macManagementPolicy:DVSMacManagementPolicy VNI:IntPolicy',
  ],
  InheritablePolicy: ['DynamicData', 'inherited:boolean'],
  BoolPolicy: ['InheritablePolicy', 'value:boolean'],
  IntPolicy: ['InheritablePolicy', 'value:int'],
  LongPolicy: ['InheritablePolicy', 'value:long'],
  StringPolicy: ['InheritablePolicy', 'value:string'],
  DVSTrafficShapingPolicy: [
    'InheritablePolicy',
    'enabled:BoolPolicy averageBandwidth:LongPolicy peakBandwidth:LongPolicy burstSize:LongPolicy',
  ],
  VmwareDistributedVirtualSwitchVlanSpec: ['InheritablePolicy', ''],
  VmwareDistributedVirtualSwitchVlanIdSpec: ['VmwareDistributedVirtualSwitchVlanSpec', 'vlanId:int'],
  VmwareDistributedVirtualSwitchTrunkVlanSpec: [
    'VmwareDistributedVirtualSwitchVlanSpec',
    'vlanId:NumericRange[]',
  ],
  VmwareDistributedVirtualSwitchPvlanSpec: ['VmwareDistributedVirtualSwitchVlanSpec', 'pvlanId:int'],
  NumericRange: ['DynamicData', 'start:int end:int'],

  // Faults: the ones the error mapping distinguishes, their subtypes and their fields.
  MethodFault: [null, 'faultCause:LocalizedMethodFault faultMessage:LocalizableMessage[]'],
  RuntimeFault: ['MethodFault', ''],
  VimFault: ['MethodFault', ''],
  SecurityError: ['RuntimeFault', ''],
  NoPermission: ['SecurityError', 'object:MoRef privilegeId:string'],
  NotAuthenticated: ['NoPermission', ''],
  RestrictedVersion: ['SecurityError', ''],
  SolutionUserRequired: ['SecurityError', ''],
  InvalidLogin: ['VimFault', ''],
  InvalidClientCertificate: ['InvalidLogin', ''],
  PasswordExpired: ['InvalidLogin', ''],
  ManagedObjectNotFound: ['RuntimeFault', 'obj:MoRef'],
  NotFound: ['VimFault', ''],
  InvalidArgument: ['RuntimeFault', 'invalidProperty:string'],
  IncompatibleSetting: ['InvalidArgument', 'conflictingProperty:string'],
  InvalidIndexArgument: ['InvalidArgument', 'key:string'],
  InvalidDasConfigArgument: ['InvalidArgument', 'entry:string clusterName:string'],
  InvalidDasRestartPriorityForFtVm: ['InvalidArgument', 'vm:MoRef vmName:string'],
  InvalidDrsBehaviorForFtVm: ['InvalidArgument', 'vm:MoRef vmName:string'],
  InvalidRequest: ['RuntimeFault', ''],
  InvalidType: ['InvalidRequest', 'argument:string'],
  MethodNotFound: ['InvalidRequest', 'receiver:MoRef method:string'],
  InvalidProperty: ['MethodFault', 'name:string'],
  InvalidState: ['VimFault', ''],
  InvalidPowerState: [
    'InvalidState',
    'requestedState:VirtualMachinePowerState existingState:VirtualMachinePowerState',
  ],
  InvalidVmState: ['InvalidState', 'vm:MoRef'],
  InvalidHostState: ['InvalidState', 'host:MoRef'],
  InvalidHostConnectionState: ['InvalidHostState', ''],
  InvalidDatastoreState: ['InvalidState', 'datastoreName:string'],
  CannotPowerOffVmInCluster: ['InvalidState', 'operation:string vm:MoRef vmName:string'],
  EncryptionKeyRequired: ['InvalidState', 'requiredKey:CryptoKeyId[]'],
  MksConnectionLimitReached: ['InvalidState', 'connectionLimit:int'],
  NoActiveHostInCluster: ['InvalidState', 'computeResource:MoRef'],
  OvfConsumerPowerOnFault: ['InvalidState', 'extensionKey:string extensionName:string description:string'],
  QuestionPending: ['InvalidState', 'text:string'],
  VmPowerOnDisabled: ['InvalidState', ''],
  TaskInProgress: ['VimFault', 'task:MoRef'],
  VAppTaskInProgress: ['TaskInProgress', ''],
  ConcurrentAccess: ['VimFault', ''],
  DuplicateName: ['VimFault', 'name:string object:MoRef'],
  AlreadyExists: ['VimFault', 'name:string'],
  NotSupported: ['RuntimeFault', ''],
  HostAccessRestrictedToManagementServer: ['NotSupported', 'managementServer:string'],
  RequestCanceled: ['RuntimeFault', ''],
  SystemError: ['RuntimeFault', 'reason:string'],
  HostCommunication: ['RuntimeFault', ''],
  HostNotConnected: ['HostCommunication', ''],
  HostNotReachable: ['HostCommunication', ''],
  Timedout: ['VimFault', ''],
  FileFault: ['VimFault', 'file:string'],
  FileNotFound: ['FileFault', ''],
  FileAlreadyExists: ['FileFault', ''],
  CannotDeleteFile: ['FileFault', ''],
  CannotCreateFile: ['FileFault', ''],
  FileLocked: ['FileFault', ''],
  CannotAccessFile: ['FileFault', ''],
  NoDiskSpace: ['FileFault', 'datastore:string'],
  InvalidName: ['VimFault', 'name:string entity:MoRef'],
  InvalidDatastore: ['VimFault', 'datastore:MoRef name:string'],
  VmConfigFault: ['VimFault', ''],
  InvalidVmConfig: ['VmConfigFault', 'property:string'],
};

/** Enumerations the table refers to: decoded as strings. */
const ENUMS: readonly string[] = [
  'VirtualMachinePowerState',
  'TaskInfoState',
  'SharesLevel',
  'VirtualSCSISharing',
  'VirtualDeviceConfigSpecOperation',
  'VirtualDeviceConfigSpecFileOperation',
  'ObjectUpdateKind',
  'PropertyChangeOp',
];

const PRIMITIVES: Readonly<Record<string, readonly [type: string, kind: ValueKind]>> = {
  string: ['xsd:string', 'string'],
  int: ['xsd:int', 'int'],
  long: ['xsd:long', 'long'],
  short: ['xsd:short', 'int'],
  byte: ['xsd:byte', 'int'],
  boolean: ['xsd:boolean', 'boolean'],
  float: ['xsd:float', 'float'],
  double: ['xsd:double', 'float'],
  dateTime: ['xsd:dateTime', 'dateTime'],
  base64: ['xsd:base64Binary', 'base64'],
  any: ['xsd:anyType', 'any'],
  MoRef: ['ManagedObjectReference', 'moref'],
};

/** Kinds of the `xsd:` types (as they appear in `xsi:type` values). */
const XSD_KINDS: Readonly<Record<string, ValueKind>> = {
  'xsd:string': 'string',
  'xsd:anyURI': 'string',
  'xsd:int': 'int',
  'xsd:short': 'int',
  'xsd:byte': 'int',
  'xsd:long': 'long',
  'xsd:unsignedInt': 'long',
  'xsd:unsignedShort': 'int',
  'xsd:unsignedByte': 'int',
  'xsd:unsignedLong': 'long',
  'xsd:integer': 'long',
  'xsd:boolean': 'boolean',
  'xsd:float': 'float',
  'xsd:double': 'float',
  'xsd:decimal': 'float',
  'xsd:dateTime': 'dateTime',
  'xsd:base64Binary': 'base64',
  'xsd:anyType': 'any',
};

/** Item types of the primitive `ArrayOfX` types (`ArrayOfInt` holds `<int>` elements of type `xsd:int`). */
const ARRAY_PRIMITIVES: Readonly<Record<string, readonly [element: string, type: string]>> = {
  String: ['string', 'xsd:string'],
  Int: ['int', 'xsd:int'],
  Long: ['long', 'xsd:long'],
  Short: ['short', 'xsd:short'],
  Byte: ['byte', 'xsd:byte'],
  Boolean: ['boolean', 'xsd:boolean'],
  Float: ['float', 'xsd:float'],
  Double: ['double', 'xsd:double'],
  DateTime: ['dateTime', 'xsd:dateTime'],
  Base64Binary: ['base64Binary', 'xsd:base64Binary'],
  AnyType: ['anyType', 'xsd:anyType'],
  AnyURI: ['anyURI', 'xsd:anyURI'],
  ManagedObjectReference: ['ManagedObjectReference', 'ManagedObjectReference'],
};

const ENUM_SET: ReadonlySet<string> = new Set(ENUMS);

function kindOfType(type: string): ValueKind {
  const xsd = XSD_KINDS[type];
  if (xsd !== undefined) return xsd;
  if (type === 'ManagedObjectReference') return 'moref';
  if (ENUM_SET.has(type)) return 'enum';
  return 'data';
}

/** Parsed table entries, before inheritance. */
const OWN_FIELDS = new Map<string, { base: string | undefined; own: Omit<VimFieldInfo, 'index'>[] }>();
for (const [name, [base, spec]] of Object.entries(TABLE)) {
  const own: Omit<VimFieldInfo, 'index'>[] = [];
  for (const token of spec.split(/\s+/)) {
    if (token === '') continue;
    const m = /^(\w+):(\w+)(\[\])?(\+)?$/.exec(token);
    if (!m) throw new Error(`schema: bad field ${token} in ${name}`);
    const [, field, rawType, array, poly] = m as unknown as [string, string, string, string?, string?];
    const primitive = PRIMITIVES[rawType];
    const type = primitive ? primitive[0] : rawType;
    own.push({
      name: field,
      type,
      kind: primitive ? primitive[1] : kindOfType(type),
      array: array !== undefined,
      polymorphic: poly !== undefined || type === 'xsd:anyType',
    });
  }
  OWN_FIELDS.set(name, { base: base ?? undefined, own });
}

const SUBTYPED = new Set<string>();
for (const { base } of OWN_FIELDS.values()) if (base !== undefined) SUBTYPED.add(base);

const TYPES = new Map<string, VimTypeInfo>();

function resolve(name: string, seen: Set<string> = new Set()): VimTypeInfo | undefined {
  const done = TYPES.get(name);
  if (done) return done;
  const entry = OWN_FIELDS.get(name);
  if (!entry) return undefined;
  if (seen.has(name)) throw new Error(`schema: inheritance cycle at ${name}`);
  seen.add(name);
  const fields = new Map<string, VimFieldInfo>();
  if (entry.base !== undefined) {
    const base = resolve(entry.base, seen);
    if (!base) throw new Error(`schema: unknown base ${entry.base} of ${name}`);
    for (const f of base.fields.values()) fields.set(f.name, f);
  }
  for (const f of entry.own) {
    fields.set(f.name, {
      ...f,
      // A field whose declared type has subtypes in the table is polymorphic too.
      polymorphic: f.polymorphic || SUBTYPED.has(f.type),
      index: fields.size,
    });
  }
  const info: VimTypeInfo = { name, base: entry.base, fields };
  TYPES.set(name, info);
  return info;
}
for (const name of OWN_FIELDS.keys()) resolve(name);

/** The table's entry for a data object type, or `undefined` when the type is not in the table. */
export function vimType(name: string): VimTypeInfo | undefined {
  return TYPES.get(name);
}

/** True when `type` is `base` or (per the table) one of its subtypes. Unknown types are only themselves. */
export function isVimSubtypeOf(type: string, base: string): boolean {
  let current: string | undefined = type;
  for (let i = 0; current !== undefined && i < 32; i++) {
    if (current === base) return true;
    current = TYPES.get(current)?.base;
  }
  return false;
}

/** The representation of a declared type name (`xsd:int` → `int`, `VirtualDisk` → `data`, ...). */
export function vimValueKind(type: string): ValueKind {
  return kindOfType(type);
}

/**
 * For an `ArrayOfX` type name: the item element name and item type (`ArrayOfInt` → `['int', 'xsd:int']`,
 * `ArrayOfVirtualDevice` → `['VirtualDevice', 'VirtualDevice']`); `undefined` for other names.
 */
export function vimArrayItem(type: string): readonly [element: string, type: string] | undefined {
  if (!type.startsWith('ArrayOf') || type.length === 7) return undefined;
  const item = type.slice(7);
  return ARRAY_PRIMITIVES[item] ?? [item, item];
}

/**
 * Declared return types of the methods hvkit calls (`ServiceContent` for RetrieveServiceContent, ...).
 * A trailing `[]` means an array; `void` means no return value. Methods ending in `_Task` return a Task
 * reference. Other methods decode their `returnval` by its `xsi:type`, or as raw values.
 */
export const METHOD_RETURNS: Readonly<Record<string, string>> = {
  RetrieveServiceContent: 'ServiceContent',
  Login: 'UserSession',
  LoginByToken: 'UserSession',
  Logout: 'void',
  SessionIsActive: 'xsd:boolean',
  CurrentTime: 'xsd:dateTime',
  CreateContainerView: 'ManagedObjectReference',
  CreateListView: 'ManagedObjectReference',
  DestroyView: 'void',
  RetrievePropertiesEx: 'RetrieveResult',
  ContinueRetrievePropertiesEx: 'RetrieveResult',
  CancelRetrievePropertiesEx: 'void',
  RetrieveProperties: 'ObjectContent[]',
  CreatePropertyCollector: 'ManagedObjectReference',
  DestroyPropertyCollector: 'void',
  CreateFilter: 'ManagedObjectReference',
  DestroyPropertyFilter: 'void',
  WaitForUpdatesEx: 'UpdateSet',
  CancelWaitForUpdates: 'void',
  CancelTask: 'void',
  AddCustomFieldDef: 'CustomFieldDef',
  SetField: 'void',
  setCustomValue: 'void',
};

/** The declared return type of `method` (see {@link METHOD_RETURNS}), or `undefined` when unknown. */
export function methodReturnType(method: string): string | undefined {
  const known = METHOD_RETURNS[method];
  if (known !== undefined) return known;
  if (method.endsWith('_Task')) return 'ManagedObjectReference';
  return undefined;
}

/**
 * Declared types of method parameters that are data objects, so that request building can order their
 * fields and check polymorphic fields (`RetrievePropertiesEx.specSet` is `PropertyFilterSpec[]`).
 */
export const METHOD_PARAMS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  RetrievePropertiesEx: { specSet: 'PropertyFilterSpec', options: 'RetrieveOptions' },
  RetrieveProperties: { specSet: 'PropertyFilterSpec' },
  CreateFilter: { spec: 'PropertyFilterSpec' },
  WaitForUpdatesEx: { options: 'WaitOptions' },
  ReconfigVM_Task: { spec: 'VirtualMachineConfigSpec' },
  SearchDatastore_Task: { searchSpec: 'HostDatastoreBrowserSearchSpec' },
  SearchDatastoreSubFolders_Task: { searchSpec: 'HostDatastoreBrowserSearchSpec' },
  ReconfigureDVPortgroup_Task: { spec: 'DVPortgroupConfigSpec' },
  CreateResourcePool: { spec: 'ResourceConfigSpec' },
  UpdateConfig: { config: 'ResourceConfigSpec' },
};

// ---- Shapes of decoded values (what the decoder returns for these types) ----

/** `AboutInfo` (part of the service content). */
export interface AboutInfo extends DataObject {
  name: string;
  fullName: string;
  vendor: string;
  version: string;
  build: string;
  apiType: string;
  apiVersion: string;
  instanceUuid?: string;
}

/** `ServiceContent`: morefs of the service's managers. */
export interface ServiceContent extends DataObject {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  viewManager?: MoRef;
  about: AboutInfo;
  sessionManager?: MoRef;
  customFieldsManager?: MoRef;
  authorizationManager?: MoRef;
  eventManager?: MoRef;
  perfManager?: MoRef;
  taskManager?: MoRef;
  [manager: string]: unknown;
}

/** `UserSession`, as returned by Login and `SessionManager.currentSession`. */
export interface UserSession extends DataObject {
  key: string;
  userName: string;
  fullName?: string;
  loginTime: Date;
  lastActiveTime?: Date;
}

/** `LocalizedMethodFault`: a fault inside a task or a missing property. */
export interface LocalizedMethodFault extends DataObject {
  fault: DataObject;
  localizedMessage?: string;
}

/** `TaskInfo` (the fields hvkit reads). */
export interface TaskInfo extends DataObject {
  key: string;
  task: MoRef;
  state: 'queued' | 'running' | 'success' | 'error' | (string & {});
  cancelled?: boolean;
  cancelable?: boolean;
  error?: LocalizedMethodFault;
  result?: unknown;
  progress?: number;
  descriptionId?: string;
  entity?: MoRef;
  entityName?: string;
}

/** `SharesInfo`. */
export interface SharesInfo extends DataObject {
  shares: number;
  level: 'low' | 'normal' | 'high' | 'custom' | (string & {});
}

/** `ResourceAllocationInfo` (CPU in MHz, memory in MB; limit −1 = unlimited). */
export interface ResourceAllocationInfo extends DataObject {
  reservation?: number;
  expandableReservation?: boolean;
  limit?: number;
  shares?: SharesInfo;
  overheadLimit?: number;
}

/** `VirtualDevice` and its subtypes (`_type` names the actual type). */
export interface VirtualDevice extends DataObject {
  key: number;
  deviceInfo?: DataObject & { label?: string; summary?: string };
  backing?: DataObject;
  connectable?: DataObject;
  slotInfo?: DataObject;
  controllerKey?: number;
  unitNumber?: number;
}
