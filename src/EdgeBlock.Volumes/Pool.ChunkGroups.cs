using Microsoft.Extensions.Logging;

namespace EdgeBlock.Volumes;

/// <summary>
/// Gives back the chunk groups of a chunk volume whose chunks were all discarded, so its map
/// shrinks again as an extent volume's does (an extent's entry goes with its last valid block).
/// A group is freed only when nothing can still use it: writers look their group up holding
/// their chunk's stripe, so with all the volume's stripes held none holds one; with the commit
/// gate held no commit carries its records, and a group not queued since its last commit
/// (Queued 0) has every change durable — a failed commit queues what it carried again.
/// Readers may still hold a freed group: they find its chunks unmapped, as they were.
/// </summary>
public sealed partial class Pool
{
    /// <summary>Groups a commit found without a mapped chunk: candidates, checked again when freed.</summary>
    private readonly List<(Volume Volume, long Index, ChunkGroup Group)> _emptyGroups = [];

    /// <summary>Notes a group the commit capture just took, if it has no mapped chunk. Under the metadata lock.</summary>
    private void NoteIfEmpty(Volume v, long index, ChunkGroup group)
    {
        if (!v.Deleted && group.IsEmpty()) _emptyGroups.Add((v, index, group));
    }

    /// <summary>After a commit: frees the noted groups in the background (as the compactor runs: not when the pool manages nothing itself).</summary>
    private void MaybeFreeEmptyGroups()
    {
        if (_emptyGroups.Count == 0 || _options.CompactInterval <= TimeSpan.Zero || Volatile.Read(ref _compacting) != 0) return;
        _ = Task.Run(async () =>
        {
            try
            {
                await FreeEmptyGroupsAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogError(e, "pool {Pool}: freeing empty chunk groups failed", Name);
            }
        });
    }

    /// <summary>Frees the noted groups that are still empty; returns how many, -1 when the compactor (or another run) is busy.</summary>
    internal async Task<int> FreeEmptyGroupsAsync()
    {
        if (Interlocked.Exchange(ref _compacting, 1) != 0) return -1;
        try
        {
            List<(Volume Volume, long Index, ChunkGroup Group)> candidates;
            lock (MetaLock)
            {
                candidates = [.. _emptyGroups];
                _emptyGroups.Clear();
            }
            int freed = 0;
            await _commitGate.WaitAsync().ConfigureAwait(false);
            try
            {
                foreach (var groups in candidates.GroupBy(c => c.Volume))
                {
                    if (Volatile.Read(ref _disposed) != 0) break;
                    freed += await FreeAsync(groups.Key, groups).ConfigureAwait(false);
                }
            }
            finally
            {
                _commitGate.Release();
            }
            return freed;
        }
        finally
        {
            Volatile.Write(ref _compacting, 0);
        }
    }

    private async Task<int> FreeAsync(Volume v, IEnumerable<(Volume, long Index, ChunkGroup Group)> groups)
    {
        int held = 0, freed = 0;
        try
        {
            // In index order, as no one else takes more than one: no deadlock.
            for (; held < v.Stripes.Length; held++) await v.Stripes[held].WaitAsync().ConfigureAwait(false);
            lock (MetaLock)
            {
                foreach (var (_, index, group) in groups)
                {
                    if (v.Deleted || !ReferenceEquals(v.Chunks[index], group) || Volatile.Read(ref group.Queued) != 0 || !group.IsEmpty()) continue;
                    v.Chunks.Set(index, null);
                    freed++;
                }
            }
        }
        finally
        {
            for (int s = 0; s < held; s++) v.Stripes[s].Release();
        }
        return freed;
    }
}
