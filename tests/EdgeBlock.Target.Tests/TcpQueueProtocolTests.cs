using EdgeBlock.Nvme.Tcp;
using EdgeBlock.PduFault;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>
/// Fatal NVMe/TCP protocol errors, sent on raw sockets: each must be answered with a C2HTermReq
/// (FES/FEI as the binding defines, echoing the offending header) and a close, and must not disturb
/// other connections. The cases are the ones tools/EdgeBlock.PduFault runs against a live daemon.
/// </summary>
public sealed class TcpQueueProtocolTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [Fact]
    public Task CapsuleCmd_BadHlen_TerminatesWithInvalidPduHeaderField() =>
        AssertTerminatesAsync(PduFaultCases.BadHlen, TermReqFes.InvalidPduHeaderField, PduHeader.OffsetHlen);

    [Fact]
    public Task Pdu_UnknownType_TerminatesWithInvalidPduHeaderField() =>
        AssertTerminatesAsync(PduFaultCases.UnknownPduType, TermReqFes.InvalidPduHeaderField, PduHeader.OffsetType);

    [Fact]
    public Task ICReq_Second_TerminatesWithPduSequenceError() =>
        AssertTerminatesAsync(PduFaultCases.SecondICReq, TermReqFes.PduSequenceError, 0);

    [Fact]
    public Task CapsuleCmd_BeforeICReq_TerminatesWithPduSequenceError() =>
        AssertTerminatesAsync(PduFaultCases.CapsuleBeforeICReq, TermReqFes.PduSequenceError, 0);

    [Fact]
    public Task CapsuleCmd_BadHeaderDigest_TerminatesWithHeaderDigestError() =>
        AssertTerminatesAsync(PduFaultCases.BadHeaderDigest, TermReqFes.HeaderDigestError, 0);

    [Fact]
    public Task H2CData_UnknownTtag_TerminatesWithInvalidPduHeaderField() =>
        AssertTerminatesAsync(PduFaultCases.H2CDataUnknownTtag, TermReqFes.InvalidPduHeaderField, DataPdu.OffsetTransferTag);

    [Fact]
    public Task H2CData_WrongOffset_TerminatesWithInvalidPduHeaderField() =>
        AssertTerminatesAsync(PduFaultCases.H2CDataWrongOffset, TermReqFes.InvalidPduHeaderField, DataPdu.OffsetDataOffset);

    [Fact]
    public Task H2CData_BeyondR2T_TerminatesWithDataTransferOutOfRange() =>
        AssertTerminatesAsync(PduFaultCases.H2CDataOutOfRange, TermReqFes.DataTransferOutOfRange, fei: null);

    [Fact]
    public void FaultCases_AllHaveATest()
    {
        // The tool runs PduFaultCases.All; each case above is pinned here so none goes untested.
        Assert.Equal(8, PduFaultCases.All.Count);
        Assert.Equal(PduFaultCases.All.Count, PduFaultCases.All.Select(c => c.Name).Distinct().Count());
    }

    private static async Task AssertTerminatesAsync(PduFaultCase fault, TermReqFes fes, uint? fei)
    {
        await using var t = TestTarget.Start();
        // A host already doing I/O on other connections of the same target.
        await using var bystander = await t.ConnectAsync(ioQueues: 1, options: new Initiator.NvmeConnectOptions { KatoMs = 0 });
        var data = TestData.Pattern(8192, 11);
        Assert.True((await bystander.WriteAsync(1, 0, 2, data)).IsSuccess);

        var result = await PduFaultCases.RunAsync(fault, TestTarget.Address, t.Port, Timeout);

        Assert.True(result.Passed, $"{fault.Name}: {result.Detail}");
        Assert.Equal(fes, result.Fes);
        if (fei is { } expected) Assert.Equal(expected, result.Fei);
        Assert.True(await Waits.UntilAsync(() => t.Transport.ConnectionCount == 2, Timeout), "the faulty connection is gone, the others remain");
        var back = new byte[data.Length];
        Assert.True((await bystander.ReadAsync(1, 0, 2, back)).IsSuccess);
        Assert.Equal(data, back);
        Assert.True((await bystander.KeepAliveAsync()).IsSuccess);
        Assert.Single(t.Target.Controllers);
    }
}
