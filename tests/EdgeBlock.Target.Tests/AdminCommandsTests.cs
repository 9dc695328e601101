using System.Buffers.Binary;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>Identify, features, log pages and asynchronous events over NVMe/TCP.</summary>
public sealed class AdminCommandsTests
{
    [Fact]
    public async Task IdentifyController_ReportsMdtsSerialNqnIoccszAndControllerType()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var id = await host.IdentifyControllerAsync();

        Assert.True(id.IsSuccess);
        var data = id.Value!;
        Assert.Equal(t.Target.Limits.MdtsPow2, data.Mdts);
        Assert.Equal(128 * 1024, host.MaxTransferBytes);
        Assert.Equal(t.Subsystem.SerialNumber, data.SerialNumber);
        Assert.Equal(20, t.Subsystem.SerialNumber.Length);
        Assert.Equal("EdgeBlock", data.ModelNumber);
        Assert.Equal(TestTarget.SubsysNqn, data.SubsystemNqn);
        Assert.Equal(host.Cntlid, data.Cntlid);
        Assert.Equal(1, data.ControllerType); // I/O controller
        Assert.Equal((uint)(64 + t.Target.Limits.InCapsuleDataBytes) / 16, data.Ioccsz);
        Assert.Equal(1u, data.Iorcsz);
        Assert.Equal(ControllerProperties.Version14, data.Version);
        Assert.NotEqual(0, data.Oncs & (1 << 2)); // Dataset Management
        Assert.NotEqual(0, data.Oncs & (1 << 3)); // Write Zeroes
        Assert.NotEqual(0, data.Oncs & 1);        // Compare
        Assert.Equal(1, data.Vwc & 1);            // volatile write cache present
        Assert.Equal(t.Target.Limits.InCapsuleDataBytes, host.IoQueues[0].InCapsuleDataBytes);
    }

    [Fact]
    public async Task IdentifyNamespace_ReportsSizeBlockSizeAndNguid()
    {
        await using var t = TestTarget.Start();
        t.AddNamespace(2, sizeBytes: 8L * 1024 * 1024, blockSize: 512);
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var ns1 = await host.IdentifyNamespaceAsync(1);
        var ns2 = await host.IdentifyNamespaceAsync(2);

        Assert.True(ns1.IsSuccess && ns2.IsSuccess);
        Assert.Equal(TestTarget.NamespaceBytes / 4096, ns1.Value!.Nsze);
        Assert.Equal(ns1.Value.Nsze, ns1.Value.Ncap);
        Assert.Equal(4096, ns1.Value.BlockSize);
        Assert.Equal(TestTarget.NamespaceUuid(1).ToByteArray(bigEndian: true), ns1.Value.Nguid);
        Assert.True(ns1.Value.DeallocatedReadsZeroes);
        Assert.Equal(8L * 1024 * 1024 / 512, ns2.Value!.Nsze);
        Assert.Equal(512, ns2.Value.BlockSize);
        Assert.Equal(TestTarget.NamespaceUuid(2).ToByteArray(bigEndian: true), ns2.Value.Nguid);
    }

    [Fact]
    public async Task IdentifyNamespace_InactiveNsid_ReturnsZeroedPage()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var inactive = await host.IdentifyNamespaceAsync(7);
        var invalid = await host.IdentifyNamespaceAsync(0);

        Assert.True(inactive.IsSuccess);
        Assert.False(inactive.Value!.IsActive);
        Assert.Equal(NvmeStatus.InvalidNamespace, invalid.Status);
    }

    [Fact]
    public async Task IdentifyActiveNamespaces_ListsNsidsInOrder()
    {
        await using var t = TestTarget.Start();
        t.AddNamespace(5);
        t.AddNamespace(3);
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var all = await host.IdentifyActiveNamespacesAsync();
        var after3 = await host.IdentifyActiveNamespacesAsync(after: 3);

        Assert.Equal(new uint[] { 1, 3, 5 }, all.Value);
        Assert.Equal(new uint[] { 5 }, after3.Value);
    }

    [Fact]
    public async Task SetFeatures_NumberOfQueues_GrantsRequestUpToLimit()
    {
        await using var t = TestTarget.Start(new TargetLimits { MaxIoQueues = 8 });
        await using var host = await t.ConnectAsync(ioQueues: 0);

        var four = await host.SetFeatureAsync(FeatureId.NumberOfQueues, 3 | 3 << 16);
        var current = await host.GetFeatureAsync(FeatureId.NumberOfQueues);
        var many = await host.SetFeatureAsync(FeatureId.NumberOfQueues, 99 | 99 << 16);

        Assert.True(four.IsSuccess);
        Assert.Equal(3u | 3u << 16, four.Dw0);    // NSQA/NCQA, 0's based
        Assert.Equal(four.Dw0, current.Dw0);
        Assert.Equal(7u | 7u << 16, many.Dw0);     // capped at MaxIoQueues
    }

    [Fact]
    public async Task Connect_MoreIoQueuesThanGranted_ConnectsOnlyGrantedQueues()
    {
        await using var t = TestTarget.Start(new TargetLimits { MaxIoQueues = 2 });
        await using var host = await t.ConnectAsync(ioQueues: 5);

        Assert.Equal(2, host.IoQueues.Count);
    }

    [Fact]
    public async Task SetFeatures_NumberOfQueuesAfterIoQueuesExist_ReturnsCommandSequenceError()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var c = await host.SetFeatureAsync(FeatureId.NumberOfQueues, 3 | 3 << 16);

        Assert.Equal(NvmeStatus.CommandSequenceError, c.Status);
    }

    [Fact]
    public async Task GetFeatures_KeepAliveTimer_ReturnsKatoFromConnect()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0, options: new NvmeConnectOptions { KatoMs = 7000 });

        var c = await host.GetFeatureAsync(FeatureId.KeepAliveTimer);

        Assert.Equal(7000u, c.Dw0);
    }

    [Fact]
    public async Task SetFeatures_VolatileWriteCacheOff_MakesWritesFua()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var device = t.Device(1);

        var set = await host.SetFeatureAsync(FeatureId.VolatileWriteCache, 0);
        var get = await host.GetFeatureAsync(FeatureId.VolatileWriteCache);
        var write = await host.WriteAsync(1, 0, 1, new byte[4096], fua: false);

        Assert.True(set.IsSuccess && write.IsSuccess);
        Assert.Equal(0u, get.Dw0);
        Assert.Equal(1, device.FuaWrites);
    }

    [Fact]
    public async Task AdminCommand_InvalidOpcode_ReturnsInvalidOpcode()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0);
        var sqe = new byte[SubmissionQueueEntry.Size];
        sqe[0] = 0xC3; // vendor specific, not implemented

        var c = await host.SubmitAsync(0, sqe).Within();

        Assert.Equal(NvmeStatus.InvalidOpcode, c.Status);
        Assert.True(c.Status.Dnr);
    }

    [Fact]
    public async Task GetLogPage_ErrorInformation_HasEntryAfterFailedCommand()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        long beyondEnd = TestTarget.NamespaceBytes / 4096;

        var failed = await host.ReadAsync(1, (ulong)beyondEnd, 1, new byte[4096], qid: 1);
        var log = new byte[ErrorLogEntry.Size * 4];
        var c = await host.GetLogPageAsync(LogPageId.ErrorInformation, log);

        Assert.Equal(NvmeStatus.LbaOutOfRange, failed.Status);
        Assert.True(c.IsSuccess);
        var newest = log.AsSpan(0, ErrorLogEntry.Size);
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(newest));                    // error count
        Assert.Equal((ushort)1, BinaryPrimitives.ReadUInt16LittleEndian(newest[8..]));         // SQID
        Assert.Equal(failed.CommandId, BinaryPrimitives.ReadUInt16LittleEndian(newest[10..])); // CID
        Assert.Equal(NvmeStatus.LbaOutOfRange, NvmeStatus.FromField(BinaryPrimitives.ReadUInt16LittleEndian(newest[12..])));
        Assert.Equal(40, BinaryPrimitives.ReadUInt16LittleEndian(newest[14..]));                // parameter error location: SLBA
        Assert.Equal((ulong)beyondEnd, BinaryPrimitives.ReadUInt64LittleEndian(newest[16..])); // LBA
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(newest[24..]));               // NSID
        Assert.True(log.AsSpan(ErrorLogEntry.Size).IndexOfAnyExcept((byte)0) < 0, "only one error happened");
    }

    [Fact]
    public async Task GetLogPage_UnsupportedLid_ReturnsInvalidLogPage()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0);

        var c = await host.GetLogPageAsync((LogPageId)0xC0, new byte[512]);

        Assert.Equal(NvmeStatus.InvalidLogPage, c.Status);
    }

    [Fact]
    public async Task GetLogPage_SmartHealth_CountsHostCommands()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var block = new byte[4096];
        for (int i = 0; i < 3; i++) Assert.True((await host.WriteAsync(1, (ulong)i, 1, block)).IsSuccess);
        Assert.True((await host.ReadAsync(1, 0, 1, block)).IsSuccess);

        var log = new byte[SmartLog.Size];
        var c = await host.GetLogPageAsync(LogPageId.SmartHealth, log);

        Assert.True(c.IsSuccess);
        Assert.Equal((UInt128)1, BinaryPrimitives.ReadUInt128LittleEndian(log.AsSpan(64)));  // host read commands
        Assert.Equal((UInt128)3, BinaryPrimitives.ReadUInt128LittleEndian(log.AsSpan(80)));  // host write commands
    }

    [Fact]
    public async Task AsyncEvent_NamespaceAdded_CompletesAerWithNamespaceAttributeChanged()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var aec = await host.SetFeatureAsync(FeatureId.AsyncEventConfiguration, AsyncEvent.NamespaceAttributeNotices);
        Assert.True(aec.IsSuccess);
        var aer = host.AsyncEventRequestAsync().AsTask();
        // Admin commands run in order: once this completes, the AER is parked in the controller.
        Assert.True((await host.KeepAliveAsync()).IsSuccess);
        Assert.False(aer.IsCompleted);

        t.AddNamespace(2);
        var evt = await aer.WaitAsync(Waits.Command);

        Assert.True(evt.IsSuccess);
        Assert.Equal(0x040002u, evt.Dw0); // notice (2), namespace attribute changed (00h), log page 04h
        var list = new byte[4096];
        Assert.True((await host.GetLogPageAsync(LogPageId.ChangedNamespaceList, list)).IsSuccess);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(list));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(list.AsSpan(4)));
        var ns2 = await host.IdentifyNamespaceAsync(2);
        Assert.True(ns2.Value!.IsActive);
        // Reading the log without RAE cleared it.
        Assert.True((await host.GetLogPageAsync(LogPageId.ChangedNamespaceList, list)).IsSuccess);
        Assert.True(list.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public async Task AsyncEvent_NoticesNotEnabled_AerStaysOutstanding()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var aer = host.AsyncEventRequestAsync().AsTask();
        Assert.True((await host.KeepAliveAsync()).IsSuccess);

        t.AddNamespace(2);
        await Task.Delay(200);

        Assert.False(aer.IsCompleted);
        var list = new byte[4096];
        Assert.True((await host.GetLogPageAsync(LogPageId.ChangedNamespaceList, list)).IsSuccess);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(list)); // the list is kept even without the notice
    }

    [Fact]
    public async Task AsyncEventRequest_BeyondAerl_ReturnsAsyncEventRequestLimitExceeded()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0);
        var parked = Enumerable.Range(0, Controller.AsyncEventRequestLimit).Select(_ => host.AsyncEventRequestAsync().AsTask()).ToList();

        var extra = await host.AsyncEventRequestAsync().Within();

        Assert.Equal(NvmeStatus.AsyncEventRequestLimitExceeded, extra.Status);
        Assert.All(parked, p => Assert.False(p.IsCompleted));
    }
}
