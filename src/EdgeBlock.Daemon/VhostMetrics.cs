using EdgeBlock.Daemon.Management;
using Prometheus;

namespace EdgeBlock.Daemon;

/// <summary>
/// Prometheus series of the vhost-user exports, by socket: requests, failures, bytes, connected.
/// An export removed (or replaced on the same socket, its counts starting again at zero) loses its
/// series, so a counter never goes backwards.
/// </summary>
internal sealed class VhostMetrics
{
    private readonly Func<IReadOnlyList<VhostInfo>> _exports;
    private readonly Counter _requests;
    private readonly Counter _failed;
    private readonly Counter _bytes;
    private readonly Gauge _connected;
    private readonly Dictionary<string, long> _lastRequests = new(StringComparer.Ordinal);

    public VhostMetrics(MetricFactory factory, Func<IReadOnlyList<VhostInfo>> exports)
    {
        _exports = exports;
        _requests = factory.CreateCounter("edgeblock_vhost_requests_total", "virtio-blk requests completed per vhost-user export (failed ones included)", "socket");
        _failed = factory.CreateCounter("edgeblock_vhost_failed_requests_total", "virtio-blk requests that completed with an error status", "socket");
        _bytes = factory.CreateCounter("edgeblock_vhost_bytes_total", "Bytes read/written per vhost-user export", "socket", "op");
        _connected = factory.CreateGauge("edgeblock_vhost_connected", "1 while a VM (QEMU) is connected to the export", "socket");
    }

    public void Refresh()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in _exports())
        {
            seen.Add(e.Socket);
            if (_lastRequests.TryGetValue(e.Socket, out long last) && e.Requests < last) Remove(e.Socket);
            _lastRequests[e.Socket] = e.Requests;
            _requests.WithLabels(e.Socket).IncTo(e.Requests);
            _failed.WithLabels(e.Socket).IncTo(e.FailedRequests);
            _bytes.WithLabels(e.Socket, "read").IncTo(e.BytesRead);
            _bytes.WithLabels(e.Socket, "write").IncTo(e.BytesWritten);
            _connected.WithLabels(e.Socket).Set(e.State == "connected" ? 1 : 0);
        }
        foreach (string gone in _lastRequests.Keys.Where(s => !seen.Contains(s)).ToList())
        {
            Remove(gone);
            _lastRequests.Remove(gone);
        }
    }

    private void Remove(string socket)
    {
        _requests.RemoveLabelled(socket);
        _failed.RemoveLabelled(socket);
        _bytes.RemoveLabelled(socket, "read");
        _bytes.RemoveLabelled(socket, "write");
        _connected.RemoveLabelled(socket);
    }
}
