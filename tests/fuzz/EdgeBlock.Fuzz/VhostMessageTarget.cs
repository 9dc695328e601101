using System.Buffers.Binary;
using EdgeBlock.Storage;
using EdgeBlock.Transports.VhostUser;

namespace EdgeBlock.Fuzz;

/// <summary>
/// The vhost-user-blk message handler: the input is what a front-end sends on the socket, run through the real
/// <see cref="VhostUserBlkConnection.Run"/> (header and payload reads, every request's parsing and checks).
/// The harness plays the front-end over a socketpair: it sends the input message by message and attaches a
/// memfd of <see cref="RegionFileBytes"/> per memory region to SET_MEM_TABLE (as QEMU does), so the memory
/// table, vring addresses and inflight requests are reached too. Without kick eventfds no ring starts.
/// Refusals are what the server does: a NACK, or a <see cref="VhostUserProtocolException"/> that ends the session.
/// A finding is any other exception out of Run (the server logs "the session failed unexpectedly"), or out of Dispose.
/// </summary>
internal sealed unsafe class VhostMessageTarget
{
    /// <summary>Replies stay in the socket until the run ends; a short input keeps them within its buffer.</summary>
    public const int MaxInputBytes = 2048;
    public const long RegionFileBytes = 1 << 20;

    private readonly FindingLogger _logger = new();
    private readonly BlkDeviceContext _ctx;

    public VhostMessageTarget() => _ctx = new(new MemoryBlockDevice(1 << 20, 512), new VhostUserBlkOptions(), _logger);

    public void Run(ReadOnlySpan<byte> input)
    {
        input = input[..Math.Min(input.Length, MaxInputBytes)];
        int* pair = stackalloc int[2];
        Libc.Check(Libc.socketpair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, pair), "socketpair");
        int frontEnd = pair[1];
        try
        {
            int bufferBytes = 1 << 20; // the kernel caps it at wmem_max; room for the replies of a MaxInputBytes input
            Libc.setsockopt(pair[0], Libc.SOL_SOCKET, Libc.SO_SNDBUF, &bufferBytes, sizeof(int));
            SendMessages(frontEnd, input);
            Libc.shutdown(frontEnd, Libc.SHUT_WR);
            var connection = new VhostUserBlkConnection(pair[0], _ctx); // owns pair[0] from here
            try
            {
                connection.Run();
            }
            finally
            {
                connection.Dispose();
            }
        }
        finally
        {
            Libc.close(frontEnd);
        }
        _logger.ThrowIfFinding();
    }

    /// <summary>Sends each whole message on its own, SET_MEM_TABLE with one memfd per region it names (at most 8).</summary>
    private static void SendMessages(int socket, ReadOnlySpan<byte> input)
    {
        Span<int> fds = stackalloc int[VhostUser.MaxMemoryRegions];
        while (input.Length > 0)
        {
            int length = input.Length;
            int fdCount = 0;
            if (input.Length >= VhostUser.HeaderSize)
            {
                uint size = BinaryPrimitives.ReadUInt32LittleEndian(input[8..]);
                if (size <= (uint)(input.Length - VhostUser.HeaderSize)) length = VhostUser.HeaderSize + (int)size;
                var request = (VhostUserRequest)BinaryPrimitives.ReadUInt32LittleEndian(input);
                if (request == VhostUserRequest.SetMemTable && length >= VhostUser.HeaderSize + 4)
                    fdCount = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input[VhostUser.HeaderSize..]), (uint)VhostUser.MaxMemoryRegions);
                else if (request == VhostUserRequest.SetInflightFd)
                    fdCount = 1;
            }
            int created = 0;
            try
            {
                for (; created < fdCount; created++) fds[created] = Libc.MemoryFile([], RegionFileBytes);
                Libc.SendWithFds(socket, input[..length], fds[..fdCount]);
            }
            finally
            {
                for (int i = 0; i < created; i++) Libc.close(fds[i]); // the receiver holds its own copies
            }
            input = input[length..];
        }
    }
}
