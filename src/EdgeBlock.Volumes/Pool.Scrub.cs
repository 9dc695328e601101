using System.IO.Hashing;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Volumes;

/// <summary>Where a scrub is and what it found so far; saved with the pool's metadata so a scrub resumes after a restart.</summary>
public sealed record ScrubState(
    DateTimeOffset Started, long VolumeId, long Chunk, long ChunksChecked, long BytesRead, List<ScrubError> Errors, bool Finished = false, DateTimeOffset? Ended = null,
    bool Cancelled = false);

/// <summary>A chunk whose stored bytes fail their checksum: the volume and the 4 KiB LBAs it holds.</summary>
public sealed record ScrubError(string Volume, long FirstLba, long LastLba, string What);

/// <summary>Progress of a running scrub.</summary>
public sealed record ScrubProgress(long ChunksChecked, long ChunksTotal, long BytesRead, int Errors, string? Volume);

/// <summary>
/// Scrub: reads every stored chunk of every checksummed volume and snapshot and verifies it
/// against its checksum (no key needed: the crc covers the stored, encrypted bytes). It uses a
/// bounded share of the drives' time (it sleeps in proportion to its reads), saves where it is
/// with the next commits, and resumes from there when started again.
/// Extent volumes keep no checksums and are not read.
/// </summary>
public sealed partial class Pool
{
    private ScrubState? _scrub;
    private bool _scrubDirty;
    private int _scrubbing;

    /// <summary>The last scrub's state (running, finished or interrupted), null when none ever ran.</summary>
    public ScrubState? Scrub
    {
        get { lock (MetaLock) return _scrub; }
    }

    public bool ScrubRunning => Volatile.Read(ref _scrubbing) != 0;

    /// <summary>
    /// Runs a scrub: from where an unfinished one stopped when resume and there is one, else from
    /// the start. ioShare (0..1] bounds the time it keeps the drives busy. Cancelling stops it and
    /// keeps its place (a later resume goes on from there).
    /// </summary>
    public async Task<ScrubState> ScrubAsync(bool resume, double ioShare, IProgress<ScrubProgress>? progress, CancellationToken cancel)
    {
        if (ioShare is <= 0 or > 1) throw new VolumeException(VolumeError.Invalid, $"pool {Name}: scrub I/O share {ioShare} must be above 0 and at most 1");
        if (Interlocked.Exchange(ref _scrubbing, 1) != 0) throw new VolumeException(VolumeError.Busy, $"pool {Name}: a scrub is already running");
        try
        {
            ScrubState state;
            List<Volume> volumes;
            lock (MetaLock)
            {
                state = resume && _scrub is { Finished: false } s ? s with { Cancelled = false }
                    : new ScrubState(DateTimeOffset.UtcNow, 0, 0, 0, 0, []);
                volumes = _volumes.Values.Where(v => v.UsesChunks && v.Features.Checksum && v.Id >= state.VolumeId).OrderBy(v => v.Id).ToList();
                _scrub = state;
                _scrubDirty = true;
            }
            long total = state.ChunksChecked + volumes.Sum(v => Interlocked.Read(ref v.MappedChunks))
                - volumes.Where(v => v.Id == state.VolumeId).Sum(v => MappedBefore(v, state.Chunk)); // checked already, counted once
            _logger.LogInformation("pool {Pool}: scrub {How}: {Volumes} checksummed volume(s) and snapshot(s), about {Chunks} chunks", Name, state.ChunksChecked > 0 ? "resumed" : "started", volumes.Count, total);
            // At once, so that a follower sees the total before the first chunk is read.
            progress?.Report(new ScrubProgress(state.ChunksChecked, total, state.BytesRead, state.Errors.Count, null));
            int perGroup = ChunksPerGroup;
            AlignedBuffer buffer = ChunkBuffers.Rent();
            try
            {
                foreach (Volume v in volumes)
                {
                    long first = v.Id == state.VolumeId ? state.Chunk : 0;
                    foreach (var (index, group) in v.Chunks.Entries(first / perGroup))
                    {
                        if (v.Deleted) break;
                        for (long chunk = Math.Max(first, index * perGroup); chunk < (index + 1) * perGroup && !v.Deleted; chunk++)
                        {
                            var (location, crc) = group.Read((int)(chunk % perGroup));
                            if (!location.IsMapped) continue;
                            cancel.ThrowIfCancellationRequested();
                            long began = Environment.TickCount64;
                            string? problem = await VerifyStoredAsync(group, (int)(chunk % perGroup), location, crc, buffer).ConfigureAwait(false);
                            long took = Environment.TickCount64 - began;
                            lock (MetaLock)
                            {
                                List<ScrubError> errors = state.Errors;
                                if (problem is not null)
                                {
                                    ReportBadChunk(v, chunk, location, problem);
                                    errors = [.. errors, new ScrubError(v.Name, chunk * ChunkLayout.BlocksPerChunk, (chunk + 1) * ChunkLayout.BlocksPerChunk - 1, problem)];
                                }
                                state = _scrub = state with
                                {
                                    VolumeId = v.Id, Chunk = chunk + 1, ChunksChecked = state.ChunksChecked + 1,
                                    BytesRead = state.BytesRead + location.Sectors * ChunkLayout.SectorSize, Errors = errors,
                                };
                                _scrubDirty = true;
                            }
                            progress?.Report(new ScrubProgress(state.ChunksChecked, Math.Max(total, state.ChunksChecked), state.BytesRead, state.Errors.Count, v.Name));
                            // Busy for `took`, idle for took × (1 − share) / share: the drives keep the rest for guests.
                            if (ioShare < 1 && took > 0) await Task.Delay(TimeSpan.FromMilliseconds(took * (1 - ioShare) / ioShare), cancel).ConfigureAwait(false);
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
                lock (MetaLock)
                {
                    state = _scrub = state with { Cancelled = true };
                    _scrubDirty = true;
                }
                await CommitAsync().ConfigureAwait(false);
                _logger.LogInformation("pool {Pool}: scrub cancelled after {Chunks} chunks; `edgeblock pool scrub {Pool}` goes on from there", Name, state.ChunksChecked, Name);
                return state;
            }
            finally
            {
                ChunkBuffers.Return(buffer);
            }
            lock (MetaLock)
            {
                state = _scrub = state with { Finished = true, Ended = DateTimeOffset.UtcNow };
                _scrubDirty = true;
            }
            await CommitAsync().ConfigureAwait(false);
            _logger.LogInformation("pool {Pool}: scrub finished: {Chunks} chunks ({Bytes} bytes) checked, {Errors} bad", Name, state.ChunksChecked, state.BytesRead, state.Errors.Count);
            return state;
        }
        finally
        {
            Volatile.Write(ref _scrubbing, 0);
        }
    }

    /// <summary>Mapped chunks of a volume before a chunk index (the part a resumed scrub has checked).</summary>
    private long MappedBefore(Volume v, long end)
    {
        int perGroup = ChunksPerGroup;
        long mapped = 0;
        foreach (var (index, group) in v.Chunks.Entries())
        {
            if (index * perGroup >= end) break;
            for (long chunk = index * perGroup; chunk < Math.Min(end, (index + 1) * perGroup); chunk++)
            {
                if (group.Read((int)(chunk % perGroup)).Location.IsMapped) mapped++;
            }
        }
        return mapped;
    }

    /// <summary>
    /// Records a stopped, unfinished scrub as interrupted rather than cancelled (saved with the next commit): the
    /// daemon stopped it to shut down, not an operator, and its next start resumes it.
    /// </summary>
    public void MarkScrubInterrupted()
    {
        lock (MetaLock)
        {
            if (ScrubRunning || _scrub is not { Finished: false, Cancelled: true } s) return;
            _scrub = s with { Cancelled = false };
            _scrubDirty = true;
        }
    }

    /// <summary>Reads a chunk's stored sectors and checks their crc; the problem, or null when sound (or moved meanwhile).</summary>
    private async Task<string?> VerifyStoredAsync(ChunkGroup group, int i, ChunkLocation location, uint crc, AlignedBuffer buffer)
    {
        var (stale, status) = await ReadStoredSectorsAsync(group, i, location, crc, buffer.Memory).ConfigureAwait(false);
        // Replaced since it was looked up: the new place is verified by its own reads.
        if (stale) return null;
        if (status != BlockStatus.Success) return $"reading it failed ({status})";
        return Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, buffer.Span[..(location.Sectors * ChunkLayout.SectorSize)]) == crc ? null : "checksum mismatch";
    }
}
