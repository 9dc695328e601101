namespace EdgeBlock.Storage;

/// <summary>Work that a completion's continuation wants done once the whole batch of completions has run.</summary>
public interface ICompletionBatchWork
{
    /// <summary>Runs on the completing thread after the batch; must not block.</summary>
    void RunAfterBatch();
}

/// <summary>
/// Lets continuations that a device runs in a batch of completions (the io_uring ring thread reaping
/// several CQEs) defer work to the end of that batch: a transport then sends the responses of all of
/// them with one system call, on that thread, instead of waking another thread for each. Outside such a
/// batch <see cref="TryDefer"/> says no and the caller does what it would do anyway.
/// </summary>
public static class CompletionBatch
{
    [ThreadStatic] private static List<ICompletionBatchWork>? t_pending;
    [ThreadStatic] private static bool t_active;

    /// <summary>True when the current thread is in a batch: the work runs at its end (once per Defer call).</summary>
    public static bool TryDefer(ICompletionBatchWork work)
    {
        if (!t_active) return false;
        (t_pending ??= new List<ICompletionBatchWork>(8)).Add(work);
        return true;
    }

    /// <summary>Starts a batch on this thread (a device's completion loop).</summary>
    internal static void Begin() => t_active = true;

    /// <summary>Ends the batch and runs what was deferred, in order.</summary>
    internal static void End()
    {
        t_active = false;
        List<ICompletionBatchWork>? pending = t_pending;
        if (pending is null || pending.Count == 0) return;
        // Work may defer nothing more (the batch is over); a new batch starts with an empty list.
        try
        {
            for (int i = 0; i < pending.Count; i++) pending[i].RunAfterBatch();
        }
        finally
        {
            pending.Clear();
        }
    }
}
