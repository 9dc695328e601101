using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>Validates a command's fields and sets its data transfer; false: the request carries the error status.</summary>
internal delegate bool CommandParser(QueuePair queue, NvmeRequest request);

/// <summary>Runs a parsed command whose host-to-controller data is in place; sets Status and Result.</summary>
internal delegate ValueTask CommandExecutor(QueuePair queue, NvmeRequest request);

/// <summary>
/// One opcode (or fabrics command type): how it is parsed, how it runs, and what the controller
/// advertises for it. Adding a command is adding one of these to its command set's list
/// (<see cref="AdminCommands.Entries"/>, <see cref="IoCommands.Entries"/>, <see cref="FabricsCommands.Entries"/>);
/// the Commands Supported and Effects log and ONCS are generated from the lists.
/// </summary>
internal sealed class NvmeCommand
{
    /// <summary>The opcode (admin, NVM) or FCTYPE (fabrics).</summary>
    public required byte Code { get; init; }
    public required string Name { get; init; }
    public required CommandParser Parse { get; init; }
    public required CommandExecutor Execute { get; init; }
    /// <summary>What the effects log says (admin and NVM commands); CSUPP is implied.</summary>
    public CommandEffects Effects { get; init; }
    /// <summary>The ONCS bit that announces this optional NVM command.</summary>
    public OptionalNvmCommands Oncs { get; init; }
    /// <summary>Runs on a queue that has not authenticated yet (Connect, Authentication Send/Receive, Disconnect).</summary>
    public bool BeforeAuthentication { get; init; }
    /// <summary>Also accepted by discovery controllers.</summary>
    public bool OnDiscovery { get; init; }

    /// <summary>A parser for commands without data and without fields to check.</summary>
    public static readonly CommandParser NoData = static (_, _) => true;

    /// <summary>An executor for commands that finish synchronously.</summary>
    public static CommandExecutor Sync(Action<QueuePair, NvmeRequest> run) => (queue, request) =>
    {
        run(queue, request);
        return default;
    };
}

/// <summary>The three command sets, indexed by opcode (FCTYPE for fabrics); a null slot is an invalid opcode.</summary>
internal static class CommandTable
{
    public static readonly NvmeCommand?[] Admin = Index(AdminCommands.Entries);
    public static readonly NvmeCommand?[] Nvm = Index(IoCommands.Entries);
    public static readonly NvmeCommand?[] Fabrics = Index(FabricsCommands.Entries);

    /// <summary>ONCS of I/O controllers: the optional NVM commands that have an entry.</summary>
    public static readonly OptionalNvmCommands Oncs = IoCommands.Entries.Aggregate(OptionalNvmCommands.None, (all, c) => all | c.Oncs);

    /// <summary>Commands Supported and Effects (I/O controllers): CSUPP and the entry's effects for every admin and NVM command.</summary>
    public static void WriteEffectsLog(Span<byte> page)
    {
        page.Clear();
        foreach (var c in AdminCommands.Entries) CommandEffectsLog.WriteAdmin(page, c.Code, CommandEffects.Supported | c.Effects);
        foreach (var c in IoCommands.Entries) CommandEffectsLog.WriteIo(page, c.Code, CommandEffects.Supported | c.Effects);
    }

    private static NvmeCommand?[] Index(NvmeCommand[] entries)
    {
        var table = new NvmeCommand?[256];
        foreach (var c in entries)
        {
            if (table[c.Code] != null) throw new InvalidOperationException($"two commands with code {c.Code:X2}h: {table[c.Code]!.Name} and {c.Name}");
            table[c.Code] = c;
        }
        return table;
    }
}
