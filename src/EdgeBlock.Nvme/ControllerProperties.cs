namespace EdgeBlock.Nvme;

/// <summary>Controller property offsets and register fields (the fabrics view of BAR0 registers).</summary>
public static class ControllerProperties
{
    public const uint Cap = 0x00;
    public const uint Vs = 0x08;
    public const uint Cc = 0x14;
    public const uint Csts = 0x1C;
    public const uint Nssr = 0x20;

    /// <summary>Version 1.4.0 (NVMe over Fabrics as the Linux host expects it).</summary>
    public const uint Version14 = 0x00010400;

    /// <summary>
    /// CAP: MQES (0's based) in 15:0, CQR bit 16, TO (500 ms units) in 31:24, CSS NVM command set bit 37, MPSMIN/MPSMAX 0 (4 KiB).
    /// </summary>
    public static ulong BuildCap(int maxQueueEntries, int timeoutHalfSeconds) =>
        (ulong)(maxQueueEntries - 1) & 0xFFFF
        | 1UL << 16
        | (ulong)(timeoutHalfSeconds & 0xFF) << 24
        | 1UL << 37;

    public static int MaxQueueEntries(ulong cap) => (int)(cap & 0xFFFF) + 1;

    // CC fields
    public static bool CcEnable(uint cc) => (cc & 1) != 0;
    public static int CcCss(uint cc) => (int)(cc >> 4) & 0x7;
    public static int CcMps(uint cc) => (int)(cc >> 7) & 0xF;
    public static int CcAms(uint cc) => (int)(cc >> 11) & 0x7;
    public static int CcShn(uint cc) => (int)(cc >> 14) & 0x3;
    public static int CcIosqes(uint cc) => (int)(cc >> 16) & 0xF;
    public static int CcIocqes(uint cc) => (int)(cc >> 20) & 0xF;

    /// <summary>A CC value that enables the controller with 64-byte SQEs and 16-byte CQEs.</summary>
    public const uint CcEnableDefault = 1 | (6 << 16) | (4 << 20);
    /// <summary>CC.SHN = 01b (normal shutdown).</summary>
    public const uint CcShutdownNormal = 1 << 14;

    // CSTS fields
    public const uint CstsReady = 1;
    public const uint CstsFatal = 1 << 1;
    public const uint CstsShutdownOccurring = 1 << 2;
    public const uint CstsShutdownComplete = 2 << 2;
}
