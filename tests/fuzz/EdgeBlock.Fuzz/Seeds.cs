using System.Buffers.Binary;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.Transports.VhostUser;

namespace EdgeBlock.Fuzz;

/// <summary>
/// The hand-made seed corpus: small valid exchanges a fuzzer mutates from (tests/fuzz/corpus/TARGET/). Written by
/// code so that each is right by construction; the JSON seeds of the config target are plain files in the repo.
/// </summary>
internal static class Seeds
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7d9e3c2a-5b1f-4c8e-9a6d-2f4b8c1e0a37";
    private static readonly Guid HostId = new("7d9e3c2a-5b1f-4c8e-9a6d-2f4b8c1e0a37");

    public static void WriteAll(string directory)
    {
        Write(directory, "nvme-tcp", NvmeTcp());
        Write(directory, "vhost-msg", VhostMessages());
        Write(directory, "vhost-ring", VhostRings());
        Write(directory, "qcow2", Qcow2Images());
    }

    private static void Write(string directory, string target, IEnumerable<(string Name, byte[] Bytes)> seeds)
    {
        string dir = Path.Combine(directory, target);
        Directory.CreateDirectory(dir);
        foreach (var (name, bytes) in seeds) File.WriteAllBytes(Path.Combine(dir, name), bytes);
    }

    // ---- NVMe/TCP -----------------------------------------------------------------------------------------

    private static IEnumerable<(string, byte[])> NvmeTcp()
    {
        byte[] adminConnect = Capsule(ConnectSqe(1, qid: 0, inCapsule: true), ConnectData(0xFFFF, NvmeTcpTarget.SubsystemNqn));
        yield return ("icreq", ICReq());
        yield return ("connect-admin", [.. ICReq(), .. adminConnect]);
        // Connect data through R2T: the H2CData PDU answers the R2T of slot 0 (TTAG 0).
        yield return ("connect-r2t-h2cdata", [.. ICReq(), .. Capsule(ConnectSqe(1, qid: 0, inCapsule: false), []),
            .. H2CData(1, ttag: 0, ConnectData(0xFFFF, NvmeTcpTarget.SubsystemNqn))]);
        yield return ("admin-identify-property-keepalive", [.. ICReq(), .. adminConnect,
            .. Capsule(Sqe(AdminOpcode.Identify, 2, nsid: 0, cdw10: (uint)IdentifyCns.Controller, transfer: 4096), []),
            .. Capsule(Sqe(AdminOpcode.Identify, 3, nsid: 1, cdw10: (uint)IdentifyCns.Namespace, transfer: 4096), []),
            .. Capsule(FabricsSqe(FabricsCommandType.PropertyGet, 4, cdw10: 1, cdw11: 0), []),
            .. Capsule(FabricsSqe(FabricsCommandType.PropertySet, 5, cdw10: 0, cdw11: 0x14, cdw12: 0x460001), []), // CC.EN
            .. Capsule(Sqe(AdminOpcode.GetLogPage, 6, nsid: 0xFFFFFFFF, cdw10: (uint)LogPageId.SmartHealth | (512 / 4 - 1) << 16, transfer: 512), []),
            .. Capsule(Sqe(AdminOpcode.SetFeatures, 7, nsid: 0, cdw10: (uint)FeatureId.NumberOfQueues, cdw11: 0x00030003), []),
            .. Capsule(Sqe(AdminOpcode.KeepAlive, 8, nsid: 0), [])]);
        yield return ("discovery-log", [.. ICReq(), .. Capsule(ConnectSqe(1, qid: 0, inCapsule: true), ConnectData(0xFFFF, Nqn.Discovery)),
            .. Capsule(Sqe(AdminOpcode.GetLogPage, 2, nsid: 0, cdw10: (uint)LogPageId.Discovery | (4096 / 4 - 1) << 16, transfer: 4096), [])]);
        yield return ("digests", [.. ICReq(headerDigest: true, dataDigest: true),
            .. Capsule(ConnectSqe(1, qid: 0, inCapsule: true), ConnectData(0xFFFF, NvmeTcpTarget.SubsystemNqn), digests: true)]);
        // An I/O queue of controller 1 (the admin connection above it): in-capsule write, read, write through R2T, flush, DSM.
        byte[] data = new byte[512];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7);
        byte[] ioConnect = Capsule(ConnectSqe(1, qid: 1, inCapsule: true), ConnectData(1, NvmeTcpTarget.SubsystemNqn));
        byte[] dsmRange = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(dsmRange.AsSpan(4), 8);
        // I/O queues connect only to an enabled controller: CC.EN = 1 (with IOSQES 6, IOCQES 4) first.
        byte[] enable = Capsule(FabricsSqe(FabricsCommandType.PropertySet, 2, cdw10: 0, cdw11: 0x14, cdw12: 0x460001), []);
        yield return ("io-write-read", [.. ICReq(), .. adminConnect, .. enable, .. NvmeTcpTarget.QueueSeparator, .. ICReq(), .. ioConnect,
            .. Capsule(Sqe(NvmOpcode.Write, 2, nsid: 1, cdw10: 0, inCapsule: 512), data),
            .. Capsule(Sqe(NvmOpcode.Read, 3, nsid: 1, cdw10: 0, transfer: 512), []),
            .. Capsule(Sqe(NvmOpcode.Write, 4, nsid: 1, cdw10: 1, transfer: 512), []),
            .. H2CData(4, ttag: 3, data), // slots are taken in order: Connect 0, Write 1, Read 2, this Write 3
            .. Capsule(Sqe(NvmOpcode.Flush, 5, nsid: 1), []),
            .. Capsule(Sqe(NvmOpcode.DatasetManagement, 6, nsid: 1, cdw10: 0, cdw11: 4, inCapsule: 16), dsmRange),
            .. Capsule(Sqe(NvmOpcode.WriteZeroes, 7, nsid: 1, cdw10: 2, cdw12: 3), [])]);
        yield return ("host-termreq", [.. ICReq(), .. TermReqPdu()]);
    }

    private static byte[] ICReq(bool headerDigest = false, bool dataDigest = false)
    {
        var pdu = new byte[PduHeader.IcReqLength];
        byte digest = (byte)((headerDigest ? InitializeConnection.DigestHeader : 0) | (dataDigest ? InitializeConnection.DigestData : 0));
        InitializeConnection.Write(pdu, PduType.ICReq, pda: 0, digest, dword3: 0);
        return pdu;
    }

    /// <summary>A CapsuleCmd PDU, with its in-capsule data right after the header (PDA 0), digests when negotiated.</summary>
    private static byte[] Capsule(byte[] sqe, ReadOnlySpan<byte> data, bool digests = false)
    {
        int hd = digests ? PduHeader.DigestSize : 0;
        int pdo = PduHeader.CapsuleCmdLength + hd;
        int plen = pdo + data.Length + (digests && data.Length > 0 ? PduHeader.DigestSize : 0);
        var pdu = new byte[plen];
        var flags = (digests ? PduFlags.Hdgstf : 0) | (digests && data.Length > 0 ? PduFlags.Ddgstf : 0);
        new PduHeader(PduType.CapsuleCmd, flags, PduHeader.CapsuleCmdLength, data.Length > 0 ? (byte)pdo : (byte)0, (uint)plen).Write(pdu);
        sqe.CopyTo(pdu.AsSpan(PduHeader.Size));
        if (digests) Crc32C.Write(pdu.AsSpan(PduHeader.CapsuleCmdLength), pdu.AsSpan(0, PduHeader.CapsuleCmdLength));
        data.CopyTo(pdu.AsSpan(pdo));
        if (digests && data.Length > 0) Crc32C.Write(pdu.AsSpan(pdo + data.Length), data);
        return pdu;
    }

    private static byte[] H2CData(ushort commandId, ushort ttag, ReadOnlySpan<byte> data)
    {
        var pdu = new byte[PduHeader.DataLength + data.Length];
        DataPdu.WriteHeader(pdu, PduType.H2CData, PduFlags.LastPdu, PduHeader.DataLength, (uint)pdu.Length, commandId, ttag, 0, (uint)data.Length);
        data.CopyTo(pdu.AsSpan(PduHeader.DataLength));
        return pdu;
    }

    private static byte[] TermReqPdu()
    {
        var pdu = new byte[PduHeader.TermReqLength];
        TermReq.Write(pdu, PduType.H2CTermReq, TermReqFes.InvalidPduHeaderField, 0, []);
        return pdu;
    }

    private static byte[] ConnectSqe(ushort cid, ushort qid, bool inCapsule) =>
        FabricsSqe(FabricsCommandType.Connect, cid, cdw10: (uint)qid << 16, cdw11: 31,
            transfer: inCapsule ? 0u : Connect.DataSize, inCapsule: inCapsule ? Connect.DataSize : 0u);

    private static byte[] ConnectData(ushort cntlid, string subsysNqn)
    {
        var data = new byte[Connect.DataSize];
        Connect.WriteData(data, HostId, cntlid, subsysNqn, HostNqn);
        return data;
    }

    private static byte[] FabricsSqe(FabricsCommandType type, ushort cid, uint cdw10 = 0, uint cdw11 = 0, uint cdw12 = 0, uint transfer = 0, uint inCapsule = 0)
    {
        var sqe = Sqe((byte)AdminOpcode.FabricsCommand, cid, nsid: 0, cdw10, cdw11, cdw12, transfer, inCapsule);
        sqe[SqeOffset.FabricsType] = (byte)type; // FCTYPE sits where other commands carry NSID
        return sqe;
    }

    private static byte[] Sqe(AdminOpcode opcode, ushort cid, uint nsid, uint cdw10 = 0, uint cdw11 = 0, uint transfer = 0) =>
        Sqe((byte)opcode, cid, nsid, cdw10, cdw11, 0, transfer, 0);

    private static byte[] Sqe(NvmOpcode opcode, ushort cid, uint nsid, uint cdw10 = 0, uint cdw11 = 0, uint cdw12 = 0, uint transfer = 0, uint inCapsule = 0) =>
        Sqe((byte)opcode, cid, nsid, cdw10, cdw11, cdw12, transfer, inCapsule);

    private static byte[] Sqe(byte opcode, ushort cid, uint nsid, uint cdw10, uint cdw11, uint cdw12, uint transfer, uint inCapsule)
    {
        var sqe = new byte[SubmissionQueueEntry.Size];
        var w = new SubmissionQueueEntryWriter(sqe) { Opcode = opcode, Flags = 0x40, CommandId = cid, Nsid = nsid, Cdw10 = cdw10, Cdw11 = cdw11, Cdw12 = cdw12 };
        if (inCapsule > 0) w.SetInCapsuleData(inCapsule);
        else if (transfer > 0) w.SetTransportData(transfer);
        return sqe;
    }

    // ---- vhost-user messages --------------------------------------------------------------------------------

    private static IEnumerable<(string, byte[])> VhostMessages()
    {
        byte[] features = BitConverter.GetBytes(1UL << 32 | 1UL << 30); // VIRTIO_F_VERSION_1, VHOST_USER_F_PROTOCOL_FEATURES
        yield return ("get-features", Message(VhostUserRequest.GetFeatures, []));
        yield return ("negotiate", [.. Message(VhostUserRequest.GetFeatures, []), .. Message(VhostUserRequest.SetFeatures, features),
            .. Message(VhostUserRequest.GetProtocolFeatures, []), .. Message(VhostUserRequest.SetProtocolFeatures, BitConverter.GetBytes(0x1UL << 9 | 0x1UL << 3)),
            .. Message(VhostUserRequest.SetOwner, []), .. Message(VhostUserRequest.GetQueueNum, []),
            .. Message(VhostUserRequest.GetConfig, [.. BitConverter.GetBytes(0u), .. BitConverter.GetBytes(60u), .. BitConverter.GetBytes(0u), .. new byte[60]])]);
        // One region of 1 MiB (the harness attaches a memfd to it), then a ring of 128 entries inside it.
        byte[] region = [.. BitConverter.GetBytes(1u), .. BitConverter.GetBytes(0u),
            .. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(1UL << 20), .. BitConverter.GetBytes(0x7f0000000000UL), .. BitConverter.GetBytes(0UL)];
        byte[] vringAddr = [.. BitConverter.GetBytes(0u), .. BitConverter.GetBytes(0u),
            .. BitConverter.GetBytes(0x7f0000000000UL), .. BitConverter.GetBytes(0x7f0000001000UL), .. BitConverter.GetBytes(0x7f0000002000UL), .. BitConverter.GetBytes(0UL)];
        yield return ("mem-table-vring", [.. Message(VhostUserRequest.SetFeatures, features), .. Message(VhostUserRequest.SetMemTable, region),
            .. Message(VhostUserRequest.SetVringNum, State(0, 128)), .. Message(VhostUserRequest.SetVringAddr, vringAddr),
            .. Message(VhostUserRequest.SetVringBase, State(0, 0)), .. Message(VhostUserRequest.SetVringKick, BitConverter.GetBytes(0x100UL)),
            .. Message(VhostUserRequest.SetVringEnable, State(0, 1)), .. Message(VhostUserRequest.GetVringBase, State(0, 0))]);
        yield return ("inflight", [.. Message(VhostUserRequest.SetProtocolFeatures, BitConverter.GetBytes(1UL << 12)),
            .. Message(VhostUserRequest.GetInflightFd, [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes((ushort)1), .. BitConverter.GetBytes((ushort)128)]),
            .. Message(VhostUserRequest.SetInflightFd, [.. BitConverter.GetBytes(4096UL * 8), .. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes((ushort)1), .. BitConverter.GetBytes((ushort)128)])]);
        yield return ("need-reply", Message(VhostUserRequest.SetVringEnable, State(0, 1), VhostUser.NeedReplyFlag));
    }

    private static byte[] State(uint index, uint num) => [.. BitConverter.GetBytes(index), .. BitConverter.GetBytes(num)];

    private static byte[] Message(VhostUserRequest request, ReadOnlySpan<byte> payload, uint flags = 0)
    {
        var m = new byte[VhostUser.HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), VhostUser.Version | flags);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(m.AsSpan(VhostUser.HeaderSize));
        return m;
    }

    // ---- split rings ----------------------------------------------------------------------------------------

    /// <summary>A 16-entry ring (log2 4) in the image: a virtio-blk read of one 512-byte sector, a write, and an indirect read.</summary>
    private static IEnumerable<(string, byte[])> VhostRings()
    {
        const int size = 16;
        const ushort next = 1, write = 2, indirect = 4;
        ulong availAt = SplitRing.DescBytes(size);
        const int header = 0x200, status = 0x220, table = 0x240, data = 0x300;
        byte[] Image(bool withIndirect)
        {
            var image = new byte[data + 512];
            void Desc(ulong at, int i, ulong addr, uint len, ushort flags, ushort nextIndex)
            {
                var d = image.AsSpan((int)at + i * 16, 16);
                BinaryPrimitives.WriteUInt64LittleEndian(d, addr);
                BinaryPrimitives.WriteUInt32LittleEndian(d[8..], len);
                BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
                BinaryPrimitives.WriteUInt16LittleEndian(d[14..], nextIndex);
            }
            // Chain 0: read (header, data written by the device, status).
            Desc(0, 0, header, 16, next, 1);
            Desc(0, 1, data, 512, next | write, 2);
            Desc(0, 2, status, 1, write, 0);
            // Chain 3: write (header type 1, data read by the device, status).
            Desc(0, 3, header + 16, 16, next, 4);
            Desc(0, 4, data, 512, next, 5);
            Desc(0, 5, status + 1, 1, write, 0);
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(header + 16), 1);
            ushort heads = 2;
            if (withIndirect)
            {
                Desc(0, 6, table, 3 * 16, indirect, 0);
                Desc(table, 0, header, 16, next, 1);
                Desc(table, 1, data, 512, next | write, 2);
                Desc(table, 2, status + 2, 1, write, 0);
                heads = 3;
            }
            var avail = image.AsSpan((int)availAt);
            BinaryPrimitives.WriteUInt16LittleEndian(avail[2..], heads);
            BinaryPrimitives.WriteUInt16LittleEndian(avail[4..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(avail[6..], 3);
            BinaryPrimitives.WriteUInt16LittleEndian(avail[8..], 6);
            return image;
        }
        yield return ("read-write", [4, 0, 0, 0, .. Image(withIndirect: false)]);
        yield return ("indirect", [4, 1, 0, 0, .. Image(withIndirect: true)]);
    }

    // ---- qcow2 --------------------------------------------------------------------------------------------

    /// <summary>Small qcow2 images (512-byte clusters keep them under the input cut): plain, deflate and zstd clusters.</summary>
    private static IEnumerable<(string, byte[])> Qcow2Images()
    {
        foreach (var compression in new[] { EdgeBlock.Images.Qcow2Compression.None, EdgeBlock.Images.Qcow2Compression.Deflate, EdgeBlock.Images.Qcow2Compression.Zstd })
        {
            string path = Path.Combine(Path.GetTempPath(), $"edgeblock-seed-{Environment.ProcessId}-{compression}.qcow2");
            using (var writer = new EdgeBlock.Images.Qcow2Writer(path, 64 << 10, compression, clusterBits: 9))
            {
                byte[] data = new byte[4096];
                new Random(5).NextBytes(data.AsSpan(0, 1024));
                data.AsSpan(2048).Fill(0x5a);
                writer.Write(8192, data);
                writer.Complete();
            }
            yield return ($"{compression.ToString().ToLowerInvariant()}", File.ReadAllBytes(path));
            File.Delete(path);
        }
    }
}
