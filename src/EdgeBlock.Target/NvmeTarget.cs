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
        Fabrics = new FabricsCommands(this);
        Admin = new AdminCommands(this);
    }

    public ILogger Logger { get; }
    public TimeProvider Time { get; }
    public TargetLimits Limits { get; }
    public Subsystem Discovery { get; }
    public string FirmwareRevision { get; init; } = "0.1.0";
    internal FabricsCommands Fabrics { get; }
    internal AdminCommands Admin { get; }

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

    internal bool Parse(QueuePair queue, NvmeRequest request)
    {
        request.Reset();
        byte opcode = request.SqeBytes[0];
        var controller = queue.Controller;
        if (opcode == (byte)AdminOpcode.FabricsCommand)
            return Fabrics.Parse(queue, request);
        if (controller == null)
            return request.Fail(NvmeStatus.CommandSequenceError);
        if (queue.Qid == 0)
            return Admin.Parse(queue, controller, request);
        return IoCommands.Parse(controller, request, Limits);
    }

    internal ValueTask ExecuteAsync(QueuePair queue, NvmeRequest request)
    {
        switch (request.Kind)
        {
            case CommandKind.None:
                break;
            case CommandKind.Read or CommandKind.Write or CommandKind.Flush or CommandKind.WriteZeroes
                or CommandKind.DatasetManagement or CommandKind.Compare:
                return ExecuteIoAsync(queue, request);
            case CommandKind.Connect or CommandKind.PropertyGet or CommandKind.PropertySet or CommandKind.Disconnect:
                Fabrics.Execute(queue, request);
                break;
            default:
                return Admin.ExecuteAsync(queue, request);
        }
        RecordIfError(queue, request);
        return default;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ExecuteIoAsync(QueuePair queue, NvmeRequest request)
    {
        await IoCommands.ExecuteAsync(queue.Controller!, request).ConfigureAwait(false);
        RecordIfError(queue, request);
    }

    internal void RecordIfError(QueuePair queue, NvmeRequest request)
    {
        if (request.Status.IsSuccess) return;
        // By opcode, not Kind: a parse failure (LBA Out of Range among them) has already reset Kind to None.
        bool hasLba = queue.Qid != 0 && (NvmOpcode)request.SqeBytes[0] is NvmOpcode.Read or NvmOpcode.Write or NvmOpcode.Compare;
        ulong lba = hasLba ? request.Sqe.Slba : 0;
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
