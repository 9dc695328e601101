using EdgeBlock.Nvme;

namespace EdgeBlock.Nvme.Tests;

public class CompletionQueueEntryTests
{
    [Fact]
    public void Write_PlacesResultSqHeadSqIdCidStatus()
    {
        var cqe = new byte[16];
        CompletionQueueEntry.Write(cqe, 0x1122334455667788, sqHead: 5, sqId: 2, commandId: 0x1234, NvmeStatus.InvalidNamespace);
        Assert.Equal(new byte[] { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 5, 0, 2, 0, 0x34, 0x12 }, cqe[..14]);
        Assert.Equal(NvmeStatus.InvalidNamespace, CompletionQueueEntry.Status(cqe));
        Assert.Equal(5, CompletionQueueEntry.SqHead(cqe));
    }
}
