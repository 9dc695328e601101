namespace EdgeBlock.Volumes;

/// <summary>
/// OpenSSL cipher contexts keyed once and shared by any number of threads: a caller rents
/// one for the length of a call. A cipher context must not be used by two threads at once,
/// and keying one per call would cost more than a 4 KiB unit's encryption.
/// </summary>
/// <remarks>
/// A fixed array of slots taken and given back with Interlocked, not a ThreadLocal: the I/O
/// path runs on pool threads that come and go, and a context per thread that ever called
/// would grow without bound. When every slot is empty a new context is made; when every
/// slot is full a returned one is freed, so the pool holds at most <c>slots</c> contexts,
/// about one per concurrent caller.
/// </remarks>
internal sealed class CipherContextPool : IDisposable
{
    // One slot per 64-byte cache line, so threads taking neighbouring slots do not bounce a line.
    private const int Stride = 64 / sizeof(long);

    private readonly nint[] _slots;
    private readonly int _count;
    private readonly Func<nint> _create;
    private readonly Action<nint> _free;
    private int _disposed;

    public CipherContextPool(int slots, Func<nint> create, Action<nint> free)
    {
        _count = slots;
        _slots = new nint[slots * Stride];
        _create = create;
        _free = free;
    }

    private ref nint Slot(int start, int i) => ref _slots[(start + i) % _count * Stride];

    public nint Rent()
    {
        // Start at a slot chosen by processor so concurrent callers rarely contend on one.
        int start = Thread.GetCurrentProcessorId();
        for (int i = 0; i < _count; i++)
        {
            nint context = Interlocked.Exchange(ref Slot(start, i), 0);
            if (context != 0)
            {
                return context;
            }
        }
        return _create();
    }

    public void Return(nint context)
    {
        int start = Thread.GetCurrentProcessorId();
        for (int i = 0; i < _count && Volatile.Read(ref _disposed) == 0; i++)
        {
            ref nint slot = ref Slot(start, i);
            if (Interlocked.CompareExchange(ref slot, context, 0) == 0)
            {
                // Disposed meanwhile: take it back unless Dispose already freed it (the
                // exchange makes exactly one of the two free it).
                if (Volatile.Read(ref _disposed) != 0)
                {
                    Free(Interlocked.Exchange(ref slot, 0));
                }
                return;
            }
        }
        Free(context);
    }

    /// <summary>Frees a context that will not go back into the pool (one that failed mid-call).</summary>
    public void Free(nint context)
    {
        if (context != 0)
        {
            _free(context);
        }
    }

    /// <summary>Frees the pooled contexts (the free function is expected to wipe their keys).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        for (int i = 0; i < _count; i++)
        {
            Free(Interlocked.Exchange(ref Slot(0, i), 0));
        }
    }
}
