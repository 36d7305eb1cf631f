namespace Matrix.Homeserver.Storage;

/// <summary>
/// Named, persistent stream counters (events, account_data, receipts, state_groups...). Positions are handed out in
/// memory from blocks reserved in <c>stream_positions</c> (one database write per <see cref="BlockSize"/> positions,
/// so concurrent writers never queue on one row), and the current position readers see is the highest one below
/// every position still in an open transaction: a later position committing first stays hidden until the earlier
/// one has committed or failed, so sync never skips an event. One server process owns the database's counters.
/// After a restart positions continue past the last reserved block (the unused rest is a gap, which is harmless).
/// A worker process (README "Scaling out") takes no positions: it follows the ones the main process announces.
/// </summary>
public sealed class StreamPositions
{
    public const int BlockSize = 1000;

    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loading = new(1, 1);
    private bool _following;

    private sealed class Counter(long position)
    {
        /// <summary>One reservation at a time: the others wait for it rather than reserving blocks of their own.</summary>
        public readonly SemaphoreSlim Reserving = new(1, 1);
        public long Last = position;
        public long ReservedUpTo = position;
        public readonly SortedSet<long> InFlight = [];
        /// <summary>Actions to run once a position is visible, by position.</summary>
        public readonly PriorityQueue<Action, long> WaitingForVisible = new();
        public long Visible => InFlight.Count == 0 ? Last : InFlight.Min - 1;

        /// <summary>Removes a finished position; returns the waiting actions that its end made visible.</summary>
        public List<Action> Finish(long position)
        {
            InFlight.Remove(position);
            var ready = new List<Action>();
            while (WaitingForVisible.TryPeek(out var action, out var waitingFor) && waitingFor <= Visible)
            {
                WaitingForVisible.Dequeue();
                ready.Add(action);
            }
            return ready;
        }
    }

    /// <summary>The next position of <paramref name="stream"/>, for a row written in the transaction of <paramref name="s"/>.</summary>
    public async Task<long> NextAsync(DbSession s, string stream)
    {
        if (!s.InTransaction)
            throw new InvalidOperationException("stream positions are taken in write transactions");
        if (_following)
            throw new InvalidOperationException($"a worker takes no '{stream}' position: the main process writes this");
        var counter = await CounterAsync(s, stream);
        long position;
        lock (counter)
            position = counter.Last < counter.ReservedUpTo ? Take(counter) : 0;
        if (position == 0)
            position = await ReserveAndTakeAsync(s, stream, counter);
        s.OnCompletedLast(_ =>
        {
            List<Action> ready;
            lock (counter)
                ready = counter.Finish(position);
            foreach (var action in ready)
                action();
        });
        return position;
    }

    /// <summary>
    /// Runs <paramref name="action"/> once readers see <paramref name="position"/> (at once if they do): a position
    /// committed ahead of an earlier one still open is announced when that one ends, not before readers could find it.
    /// </summary>
    public void WhenVisible(string stream, long position, Action action)
    {
        Counter? counter;
        lock (_counters)
            _counters.TryGetValue(stream, out counter);
        if (counter is not null)
            lock (counter)
                if (position > counter.Visible)
                {
                    counter.WaitingForVisible.Enqueue(action, position);
                    return;
                }
        action();
    }

    /// <summary>The position up to which every row of the stream is committed.</summary>
    public async Task<long> CurrentAsync(DbSession s, string stream)
    {
        var counter = await CounterAsync(s, stream);
        lock (counter)
            return counter.Visible;
    }

    /// <summary>The stream's current position without a database session, once it has been read (false before).</summary>
    public bool TryCurrent(string stream, out long position)
    {
        Counter? counter;
        lock (_counters)
            _counters.TryGetValue(stream, out counter);
        position = 0;
        if (counter is null)
            return false;
        lock (counter)
            position = counter.Visible;
        return true;
    }

    /// <summary>Every loaded stream's visible position.</summary>
    public Dictionary<string, long> VisiblePositions()
    {
        lock (_counters)
            return _counters.ToDictionary(c => c.Key, c => { lock (c.Value) return c.Value.Visible; }, StringComparer.Ordinal);
    }

    /// <summary>Loads every stream's counter (the main process at start-up, so that it announces all of them).</summary>
    public async Task LoadAllAsync(DbSession s)
    {
        foreach (var stream in await s.QueryAsync<string>("SELECT stream FROM stream_positions"))
            await CounterAsync(s, stream);
    }

    /// <summary>
    /// Makes this a worker's positions, moved by the main process's announcements (<paramref name="positions"/> and
    /// later <see cref="Follow"/> calls); they never move back.
    /// </summary>
    public void Follow(IReadOnlyDictionary<string, long> positions)
    {
        _following = true;
        foreach (var (stream, position) in positions)
        {
            Counter counter;
            lock (_counters)
                if (!_counters.TryGetValue(stream, out counter!))
                    _counters[stream] = counter = new Counter(position);
            lock (counter)
                counter.Last = counter.ReservedUpTo = Math.Max(counter.Last, position);
        }
    }

    private static long Take(Counter counter)
    {
        var position = ++counter.Last;
        counter.InFlight.Add(position);
        return position;
    }

    /// <summary>
    /// Reserves the next block. On PostgreSQL in a transaction of its own (on a connection outside the pool, which
    /// may be all taken by transactions waiting here), committed at once, so the block stays reserved whatever
    /// becomes of the caller's transaction. SQLite has one writer at a time, the caller: the
    /// reservation joins its transaction, and is undone in memory if that fails (no one else took from the block).
    /// </summary>
    private async Task<long> ReserveAndTakeAsync(DbSession s, string stream, Counter counter)
    {
        const string reserve = "UPDATE stream_positions SET position = position + @block WHERE stream = @stream RETURNING position";
        if (s.Database.Engine == DatabaseEngine.Postgres)
        {
            await counter.Reserving.WaitAsync();
            try
            {
                lock (counter)
                    if (counter.Last < counter.ReservedUpTo)
                        return Take(counter);
                var end = await s.Database.ExecuteOutsidePoolAsync<long>(reserve, new { stream, block = BlockSize }, CancellationToken.None);
                lock (counter)
                {
                    (counter.Last, counter.ReservedUpTo) = (end - BlockSize, end);
                    return Take(counter);
                }
            }
            finally
            {
                counter.Reserving.Release();
            }
        }
        var reservedEnd = await s.ExecuteScalarAsync<long>(reserve, new { stream, block = BlockSize });
        long previousLast;
        lock (counter)
        {
            previousLast = counter.Last;
            (counter.Last, counter.ReservedUpTo) = (reservedEnd - BlockSize, reservedEnd);
        }
        s.OnCompleted(committed =>
        {
            if (!committed)
                lock (counter)
                    (counter.Last, counter.ReservedUpTo) = (previousLast, previousLast);
        });
        lock (counter)
            return Take(counter);
    }

    private async Task<Counter> CounterAsync(DbSession s, string stream)
    {
        lock (_counters)
            if (_counters.TryGetValue(stream, out var known))
                return known;
        await _loading.WaitAsync();
        try
        {
            lock (_counters)
                if (_counters.TryGetValue(stream, out var known))
                    return known;
            // A worker starts from what the main process last recorded as visible (its blocks are its own).
            var position = await s.ExecuteScalarAsync<long?>(_following
                    ? "SELECT position FROM replication_positions WHERE stream = @stream"
                    : "SELECT position FROM stream_positions WHERE stream = @stream", new { stream })
                ?? throw new InvalidOperationException($"no stream '{stream}' in {(_following ? "replication_positions" : "stream_positions")}");
            var counter = new Counter(position);
            lock (_counters)
                _counters[stream] = counter;
            return counter;
        }
        finally
        {
            _loading.Release();
        }
    }
}
