using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// A connection's output as Kestrel writes it, passed straight through, except once armed by Kestrel's refusal of a
/// request (<see cref="KestrelRejections"/>): then what Kestrel writes next is held until its flush, and if it is the
/// empty answer Kestrel gives a refused request (the head alone, with Content-Length: 0), it goes out with a
/// problem+json body instead. Anything else held goes out unchanged.
/// </summary>
internal sealed class RejectionRewritingPipeWriter(PipeWriter inner) : PipeWriter
{
    private ArrayBufferWriter<byte>? _held;
    private bool _holding; // the memory handed out last is _held's
    private volatile Rejection? _armed;

    private sealed record Rejection(int Status, string Detail);

    public void Arm(int status, string detail) => _armed = new Rejection(status, detail);

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        _holding = _armed != null;
        return _holding ? (_held ??= new ArrayBufferWriter<byte>()).GetMemory(sizeHint) : inner.GetMemory(sizeHint);
    }

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override void Advance(int bytes)
    {
        if (_holding) _held!.Advance(bytes);
        else inner.Advance(bytes);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        Release();
        return inner.FlushAsync(cancellationToken);
    }

    public override void Complete(Exception? exception = null)
    {
        Release();
        inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        Release();
        return inner.CompleteAsync(exception);
    }

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes + (_held?.WrittenCount ?? 0);

    private void Release()
    {
        if (_held is not { WrittenCount: > 0 } held) return;
        var rejection = _armed;
        _armed = null;
        _holding = false;
        if (rejection is null || !TryWriteProblem(held.WrittenSpan, rejection)) inner.Write(held.WrittenSpan);
        held.ResetWrittenCount();
    }

    /// <summary>Writes Kestrel's head with a problem+json body in place of its Content-Length: 0, when it is that answer.</summary>
    private bool TryWriteProblem(ReadOnlySpan<byte> head, Rejection rejection)
    {
        ReadOnlySpan<byte> emptyBody = "\r\nContent-Length: 0\r\n"u8;
        string status = $"HTTP/1.1 {rejection.Status.ToString(CultureInfo.InvariantCulture)} ";
        int end = head.IndexOf("\r\n\r\n"u8);
        int length = head.IndexOf(emptyBody);
        if (!head.StartsWith(Encoding.ASCII.GetBytes(status)) || end != head.Length - 4 || length < 0) return false;

        byte[] body = WebRefusals.ProblemJson(rejection.Status, rejection.Detail);
        inner.Write(head[..(length + 2)]);
        inner.Write(Encoding.ASCII.GetBytes($"Content-Type: application/problem+json\r\nContent-Length: {body.Length.ToString(CultureInfo.InvariantCulture)}\r\n"));
        inner.Write(head[(length + emptyBody.Length)..]);
        inner.Write(body);
        return true;
    }
}
