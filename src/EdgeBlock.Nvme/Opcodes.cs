namespace EdgeBlock.Nvme;

/// <summary>Admin command set opcodes used over fabrics.</summary>
public enum AdminOpcode : byte
{
    DeleteIoSq = 0x00,
    CreateIoSq = 0x01,
    GetLogPage = 0x02,
    DeleteIoCq = 0x04,
    CreateIoCq = 0x05,
    Identify = 0x06,
    Abort = 0x08,
    SetFeatures = 0x09,
    GetFeatures = 0x0A,
    AsyncEventRequest = 0x0C,
    KeepAlive = 0x18,
    FabricsCommand = 0x7F,
}

/// <summary>NVM command set opcodes.</summary>
public enum NvmOpcode : byte
{
    Flush = 0x00,
    Write = 0x01,
    Read = 0x02,
    WriteUncorrectable = 0x04,
    Compare = 0x05,
    WriteZeroes = 0x08,
    DatasetManagement = 0x09,
    FabricsCommand = 0x7F,
}

/// <summary>Fabrics command type (FCTYPE, byte 4 of a fabrics SQE).</summary>
public enum FabricsCommandType : byte
{
    PropertySet = 0x00,
    Connect = 0x01,
    PropertyGet = 0x04,
    AuthenticationSend = 0x05,
    AuthenticationReceive = 0x06,
    Disconnect = 0x08,
}

/// <summary>Identify CNS values.</summary>
public enum IdentifyCns : byte
{
    Namespace = 0x00,
    Controller = 0x01,
    ActiveNamespaceList = 0x02,
    NamespaceDescriptorList = 0x03,
    IoCommandSetController = 0x06,
}

/// <summary>Log page identifiers.</summary>
public enum LogPageId : byte
{
    ErrorInformation = 0x01,
    SmartHealth = 0x02,
    FirmwareSlot = 0x03,
    ChangedNamespaceList = 0x04,
    CommandsSupportedAndEffects = 0x05,
    Discovery = 0x70,
}

/// <summary>Feature identifiers.</summary>
public enum FeatureId : byte
{
    Arbitration = 0x01,
    PowerManagement = 0x02,
    TemperatureThreshold = 0x04,
    ErrorRecovery = 0x05,
    VolatileWriteCache = 0x06,
    NumberOfQueues = 0x07,
    InterruptCoalescing = 0x08,
    WriteAtomicityNormal = 0x0A,
    AsyncEventConfiguration = 0x0B,
    KeepAliveTimer = 0x0F,
    HostIdentifier = 0x81,
}
