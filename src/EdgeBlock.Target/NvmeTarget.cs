using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Target;

/// <summary>
/// The target core: subsystems, controllers and command routing. Parse routes by queue state
/// (no controller: Connect only; qid 0: admin and fabrics; otherwise NVM), validates and picks
/// the handler without touching a device; Execute runs it once the data is in.
/// </summary>
public sealed class NvmeTarget
{
    private readonly ConcurrentDictionary<string, Subsystem> _subsystems = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ushort, Controller> _controllers = new();
    private readonly object _cntlidGate = new();
    private ushort _nextCntlid = 1;
    private long _discoveryGenctr;

    public NvmeTarget(ILogger? logger = null, TimeProvider? time = null, TargetLimits? limits = null)
    {
        Logger = logger ?? NullLogger.Instance;
        Time = time ?? TimeProvider.System;
        Limits = limits ?? new TargetLimits();
        Discovery = new Subsystem(Nqn.Discovery, isDiscovery: true);
    }

    public ILogger Logger { get; }
    public TimeProvider Time { get; }
    public TargetLimits Limits { get; }
    public Subsystem Discovery { get; }
    public string FirmwareRevision { get; init; } = "0.1.0";

    public IReadOnlyCollection<Subsystem> Subsystems => _subsystems.Values.ToList();
    public IReadOnlyCollection<Controller> Controllers => _controllers.Values.ToList();
    public ulong DiscoveryGenctr => (ulong)Interlocked.Read(ref _discoveryGenctr);

    public Subsystem? FindSubsystem(string nqn) =>
        nqn == Nqn.Discovery ? Discovery : _subsystems.GetValueOrDefault(nqn);

    public void AddSubsystem(Subsystem subsystem)
    {
        if (subsystem.IsDiscovery || !_subsystems.TryAdd(subsystem.NqnName, subsystem))
            throw new InvalidOperationException($"subsystem {subsystem.NqnName} already exists");
        subsystem.Changed += _ => BumpDiscoveryGeneration();
        BumpDiscoveryGeneration();
    }

    public Subsystem? RemoveSubsystem(string nqn)
    {
        if (!_subsystems.TryRemove(nqn, out var s)) return null;
        foreach (var c in s.Controllers) c.Destroy("subsystem removed");
        BumpDiscoveryGeneration();
        return s;
    }

    private void BumpDiscoveryGeneration()
    {
        Interlocked.Increment(ref _discoveryGenctr);
        foreach (var c in Discovery.Controllers) c.OnDiscoveryChanged();
    }

    /// <summary>Allocates a controller ID unique among live controllers (1..FFEFh).</summary>
    internal Controller? CreateController(Subsystem subsystem, string hostNqn, Guid hostId, uint katoMs)
    {
        lock (_cntlidGate)
        {
            for (int tries = 0; tries < 0xFFEF; tries++)
            {
                ushort id = _nextCntlid;
                _nextCntlid = (ushort)(_nextCntlid >= 0xFFEF ? 1 : _nextCntlid + 1);
                if (_controllers.ContainsKey(id)) continue;
                var c = new Controller(this, subsystem, id, hostNqn, hostId, katoMs);
                _controllers[id] = c;
                subsystem.Attach(c);
                return c;
            }
        }
        return null;
    }

    internal Controller? FindController(ushort cntlid) => _controllers.GetValueOrDefault(cntlid);
    internal void ForgetController(Controller c) => _controllers.TryRemove(new KeyValuePair<ushort, Controller>(c.Cntlid, c));

    // ---- routing ---------------------------------------------------------------

    private const uint AllNamespaces = 0xFFFFFFFF;

    /// <summary>
    /// Routes by queue state (no controller: Connect only; qid 0: fabrics and admin; otherwise
    /// NVM), finds the command's entry, checks what all commands of its set share, then lets the
    /// entry check its own fields. Touches no device.
    /// </summary>
    internal bool Parse(QueuePair queue, NvmeRequest request)
    {
        request.Reset();
        var sqe = request.Sqe;
        var controller = queue.Controller;
        if (sqe.Opcode == (byte)AdminOpcode.FabricsCommand)
        {
            var fabrics = CommandTable.Fabrics[(byte)sqe.FabricsType];
            if (!queue.IsAuthenticated && fabrics is { BeforeAuthentication: false }) return request.Fail(NvmeStatus.AuthenticationRequired);
            return ParseEntry(queue, request, fabrics, SqeOffset.FabricsType);
        }
        if (controller == null)
            return request.Fail(NvmeStatus.CommandSequenceError);
        // DH-HMAC-CHAP: a queue whose Connect asked for authentication runs nothing else until it succeeded.
        if (!queue.IsAuthenticated) return request.Fail(NvmeStatus.AuthenticationRequired);
        if (queue.Qid == 0)
        {
            // Only Connect and Property Get/Set are allowed before the host enables the controller.
            if (!controller.IsReady) return request.Fail(NvmeStatus.CommandSequenceError);
            var admin = CommandTable.Admin[sqe.Opcode];
            return ParseEntry(queue, request, admin is { OnDiscovery: false } && controller.IsDiscovery ? null : admin, SqeOffset.Opcode);
        }
        if (controller.IsDiscovery) return request.Fail(NvmeStatus.InvalidOpcode, SqeOffset.Opcode);
        var io = CommandTable.Nvm[sqe.Opcode];
        if (io == null) return request.Fail(NvmeStatus.InvalidOpcode, SqeOffset.Opcode);
        if (!(io.Code == (byte)NvmOpcode.Flush && sqe.Nsid == AllNamespaces))
        {
            var ns = controller.Subsystem.FindNamespace(sqe.Nsid);
            if (ns == null) return request.Fail(NvmeStatus.InvalidNamespace, SqeOffset.Nsid);
            request.Namespace = ns;
            request.StartTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        }
        if (sqe.Fuse != 0) return request.Fail(NvmeStatus.InvalidField, SqeOffset.Flags); // fused operations are not supported
        return ParseEntry(queue, request, io, SqeOffset.Opcode);
    }

    private static bool ParseEntry(QueuePair queue, NvmeRequest request, NvmeCommand? command, ushort codeOffset)
    {
        if (command == null) return request.Fail(NvmeStatus.InvalidOpcode, codeOffset);
        request.Command = command;
        return command.Parse(queue, request);
    }

    /// <summary>
    /// Runs the entry Parse chose. A command bound to a namespace is admitted to its device first
    /// (refused with Invalid Namespace once the namespace is being removed) and leaves it when done,
    /// so a removed namespace closes its device when its last command finished.
    /// </summary>
    internal ValueTask ExecuteAsync(QueuePair queue, NvmeRequest request)
    {
        var command = request.Command;
        var ns = request.Namespace;
        if (command == null)
        {
            // Parse failed or was skipped: nothing may run, and nothing completes as Success.
            if (request.Status.IsSuccess) request.Fail(NvmeStatus.InvalidOpcode, SqeOffset.Opcode);
            RecordIfError(queue, request);
            return default;
        }
        if (ns != null && !ns.TryEnter())
        {
            request.Fail(NvmeStatus.InvalidNamespace, SqeOffset.Nsid);
            RecordIfError(queue, request);
            return default;
        }
        ValueTask pending;
        try
        {
            pending = command.Execute(queue, request);
        }
        catch
        {
            ns?.Exit();
            throw;
        }
        if (!pending.IsCompletedSuccessfully) return FinishAsync(pending, queue, request, ns);
        Finish(queue, request, ns);
        return default;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FinishAsync(ValueTask pending, QueuePair queue, NvmeRequest request, Namespace? ns)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        finally
        {
            Finish(queue, request, ns);
        }
    }

    private void Finish(QueuePair queue, NvmeRequest request, Namespace? ns)
    {
        ns?.Exit();
        RecordIfError(queue, request);
    }

    /// <summary>The one place a failed command is recorded: the controller's error log and its namespace's counters.</summary>
    private static void RecordIfError(QueuePair queue, NvmeRequest request)
    {
        if (request.Status.IsSuccess) return;
        // By opcode: a parse failure (LBA Out of Range among them) has no command entry any more.
        ulong lba = queue.Qid != 0 && IoCommands.HasLba(request.Sqe.Opcode) ? request.Sqe.Slba : 0;
        queue.Controller?.RecordError(queue.Qid, request, lba);
        if (request.Namespace is { } ns)
        {
            Interlocked.Increment(ref ns.Counters.Errors);
            ns.Counters.ErrorsByStatus.Increment(request.Status);
        }
    }

    /// <summary>Errors found while parsing (before Execute) are recorded by the transport through this.</summary>
    public void OnParseFailed(QueuePair queue, NvmeRequest request) => RecordIfError(queue, request);
}
