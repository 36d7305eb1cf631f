namespace Matrix.Homeserver.Storage;

/// <summary>
/// Named, persistent stream counters (events, account_data, receipts, state_groups...). Positions are handed out in
/// memory from blocks reserved in <c>stream_positions</c> (one database write per <see cref="BlockSize"/> positions,
/// so concurrent writers never queue on one row), and the current position readers see is the highest one below
/// every position still in an open transaction: a later position committing first stays hidden until the earlier
/// one has committed or failed, so sync never skips an event. One server process owns the database's counters.
/// After a restart positions continue past the last reserved block (the unused rest is a gap, which is harmless).
/// A worker process (README "Scaling out") takes no positions: it follows the ones the main process announces.
/// With several event writers (<see cref="ShareAmongWriters"/>) the events stream is shared instead: each writer takes its
/// positions from one PostgreSQL sequence, and readers see up to the lowest position each writer has committed all of.
/// </summary>
public sealed class StreamPositions
{
    public const int BlockSize = 1000;

    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loading = new(1, 1);
    private bool _following;

    /// <summary>The stream every event writer takes positions of (from the sequence of the same name plus <c>_seq</c>).</summary>
    public const string SharedStream = "events";

    /// <summary>
    /// Streams whose positions are only identifiers (no reader goes by where they stand), taken by an event writer too
    /// (with an event, or for other servers' EDUs): it reserves blocks of them for itself, as the main process does.
    /// </summary>
    private static readonly HashSet<string> IdentifierStreams = new(StringComparer.Ordinal)
        { "state_groups", "federation_outbox", "appservice_outbox", "federation_inbound_edus" };
    private bool _writesEvents;

    /// <summary>
    /// This process (a writer of the shared stream) moved its own position: it committed everything of its own up to a
    /// new one, or caught up with another writer. The other processes are told (<see cref="Replication.PositionAnnouncer"/>).
    /// Raised outside any lock.
    /// </summary>
    public event Action? OwnPositionMoved;

    private sealed class Counter(long position)
    {
        /// <summary>One reservation at a time: the others wait for it rather than reserving blocks of their own.</summary>
        public readonly SemaphoreSlim Reserving = new(1, 1);
        public long Last = position;
        public long ReservedUpTo = position;
        public readonly SortedSet<long> InFlight = [];
        /// <summary>Actions to run once a position is visible, by position.</summary>
        public readonly PriorityQueue<Action, long> WaitingForVisible = new();
        /// <summary>A shared stream: where each other writer has committed everything of its own (null: this process alone).</summary>
        public Dictionary<string, long>? Writers;
        /// <summary>Writers found gone (no connection to the database left): they hold no one back until heard from again.</summary>
        public readonly HashSet<string> Gone = new(StringComparer.Ordinal);
        /// <summary>A shared stream: whether this process writes it, and whether it is asking the sequence for a position.</summary>
        public bool SelfWrites, Allocating;
        /// <summary>An event writer's identifier stream: its own blocks, which the main process's announcements do not move.</summary>
        public bool OwnBlocks;

        /// <summary>Up to where this process's own positions are all committed.</summary>
        public long Own => InFlight.Count == 0 ? Last : InFlight.Min - 1;

        public long Visible
        {
            get
            {
                if (Writers is null)
                    return Own;
                var visible = SelfWrites ? Own : long.MaxValue;
                foreach (var (writer, position) in Writers)
                    if (!Gone.Contains(writer))
                        visible = Math.Min(visible, position);
                // Every writer gone: all they said they committed is, and nothing more of theirs is coming.
                return visible == long.MaxValue ? Math.Max(Last, Writers.Values.DefaultIfEmpty(Last).Max()) : visible;
            }
        }

        /// <summary>Removes a finished position; returns the waiting actions that its end made visible.</summary>
        public List<Action> Finish(long position)
        {
            InFlight.Remove(position);
            CatchUp();
            return Ready();
        }

        /// <summary>
        /// A writer of a shared stream with nothing in flight moves up to the highest position another writer has said
        /// it committed (the sequence handed that out before any position this writer takes next). Without this, a
        /// writer busy when another spoke would hold readers below that until someone spoke again.
        /// </summary>
        public bool CatchUp()
        {
            if (Writers is not { Count: > 0 } || !SelfWrites || Allocating || InFlight.Count > 0)
                return false;
            var highest = Writers.Values.Max();
            if (highest <= Last)
                return false;
            Last = highest;
            return true;
        }

        /// <summary>The waiting actions whose positions are now visible.</summary>
        public List<Action> Ready()
        {
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
        var counter = await CounterAsync(s, stream);
        if (counter.Writers is null ? _following && !counter.OwnBlocks : !counter.SelfWrites)
            throw new InvalidOperationException($"this process takes no '{stream}' position: another one writes this");
        long position;
        bool shared;
        lock (counter)
        {
            shared = counter.Writers is not null;
            position = !shared && counter.Last < counter.ReservedUpTo ? Take(counter) : 0;
        }
        if (shared)
            position = await TakeSharedAsync(s, stream, counter);
        else if (position == 0)
            position = await ReserveAndTakeAsync(s, stream, counter);
        s.OnCompletedLast(_ =>
        {
            List<Action> ready;
            bool moved;
            lock (counter)
            {
                var before = counter.Own;
                ready = counter.Finish(position);
                moved = shared && counter.Own > before;
            }
            if (moved)
                OwnPositionMoved?.Invoke();
            Run(ready);
        });
        return position;
    }

    /// <summary>
    /// A shared stream's next position, from its sequence. One request at a time: a position handed out later is never
    /// taken into the in-flight set before an earlier one, so this process never claims one still on its way.
    /// </summary>
    private static async Task<long> TakeSharedAsync(DbSession s, string stream, Counter counter)
    {
        await counter.Reserving.WaitAsync();
        try
        {
            lock (counter)
                counter.Allocating = true;
            var position = await s.ExecuteScalarAsync<long>($"SELECT nextval('{stream}_seq')");
            lock (counter)
            {
                counter.Last = Math.Max(counter.Last, position);
                counter.InFlight.Add(position);
            }
            return position;
        }
        finally
        {
            lock (counter)
                counter.Allocating = false;
            counter.Reserving.Release();
        }
    }

    /// <summary>
    /// Shares <see cref="SharedStream"/> among <paramref name="writers"/> (the main process as <c>main</c>, then the event
    /// writers' instance names), this process being <paramref name="self"/> (null: a reader). Every writer is taken to
    /// stand at <paramref name="start"/> (a position up to which all is committed) until it says where it is; a writer
    /// starts from what the sequence has handed out (<see cref="StartSharedAsync"/>), its earlier positions being all
    /// committed or abandoned.
    /// </summary>
    public void ShareAmongWriters(IReadOnlyCollection<string> writers, string? self, long start, long? ownStart)
    {
        var counter = new Counter(ownStart ?? start)
        {
            Writers = writers.Where(w => w != self).ToDictionary(w => w, _ => start, StringComparer.Ordinal),
            SelfWrites = self is not null,
        };
        _writesEvents = self is not null;
        lock (_counters)
            _counters[SharedStream] = counter;
    }

    /// <summary>
    /// A writer of the shared stream starting: moves its sequence past every position taken before it was shared (one
    /// process at a time, so none moves it back), and returns the last position it has handed out.
    /// </summary>
    public static Task<long> StartSharedAsync(Database db, CancellationToken ct) => db.WriteAsync(async s =>
    {
        await s.ExecuteAsync("SELECT pg_advisory_xact_lock(7345002)");
        await s.ExecuteAsync($"""
            SELECT setval('{SharedStream}_seq', p.position) FROM stream_positions p, {SharedStream}_seq q
            WHERE p.stream = '{SharedStream}' AND p.position > (CASE WHEN q.is_called THEN q.last_value ELSE 0 END)
            """);
        return await s.ExecuteScalarAsync<long>($"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {SharedStream}_seq");
    }, ct);

    /// <summary>
    /// Another writer of the shared stream has committed everything of its own up to <paramref name="position"/>.
    /// Returns whether this writer, with nothing of its own in flight, moved up to it (raising <see cref="OwnPositionMoved"/>,
    /// so that readers waiting on it move on): no position it takes later can be below one the sequence has handed out.
    /// </summary>
    /// <param name="live">heard from the writer now (over Redis), rather than read from what it recorded: a writer found
    /// gone is waited for again once it speaks, or once what it recorded moves</param>
    public bool FollowWriter(string writer, long position, bool live)
    {
        var counter = SharedCounter();
        List<Action> ready;
        var moved = false;
        lock (counter)
        {
            if (!counter.Writers!.TryGetValue(writer, out var was))
                return false;
            counter.Writers[writer] = Math.Max(was, position);
            if (live || position > was)
                counter.Gone.Remove(writer);
            moved = counter.CatchUp();
            ready = counter.Ready();
        }
        if (moved)
            OwnPositionMoved?.Invoke();
        Run(ready);
        return moved;
    }

    /// <summary>The shared stream's writers standing below the highest position any has committed, with where they stand.</summary>
    public List<(string Writer, long Position)> WritersBehind()
    {
        var counter = SharedCounter();
        lock (counter)
        {
            var highest = Math.Max(counter.SelfWrites ? counter.Own : long.MinValue, counter.Writers!.Values.DefaultIfEmpty(long.MinValue).Max());
            return counter.Writers.Where(w => w.Value < highest && !counter.Gone.Contains(w.Key)).Select(w => (w.Key, w.Value)).ToList();
        }
    }

    /// <summary>
    /// A writer of the shared stream is gone (its process died: every transaction it had open was rolled back), and it
    /// stood at <paramref name="position"/>: readers stop waiting for it, until it is heard from again.
    /// </summary>
    public void WriterGone(string writer, long position)
    {
        var counter = SharedCounter();
        List<Action> ready;
        lock (counter)
        {
            if (counter.Writers!.GetValueOrDefault(writer) != position)
                return;
            counter.Gone.Add(writer);
            ready = counter.Ready();
        }
        Run(ready);
    }

    /// <summary>Where this writer of the shared stream has committed everything of its own.</summary>
    public long OwnSharedPosition()
    {
        var counter = SharedCounter();
        lock (counter)
            return counter.Own;
    }

    /// <summary>Whether the stream is shared among several writers.</summary>
    public bool IsShared(string stream)
    {
        lock (_counters)
            return _counters.TryGetValue(stream, out var counter) && counter.Writers is not null;
    }

    private Counter SharedCounter()
    {
        lock (_counters)
            return _counters.TryGetValue(SharedStream, out var counter) && counter.Writers is not null
                ? counter : throw new InvalidOperationException("the events stream is not shared among writers");
    }

    private static void Run(List<Action> actions)
    {
        foreach (var action in actions)
            action();
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
            if (_writesEvents && IdentifierStreams.Contains(stream))
                continue;
            Counter counter;
            lock (_counters)
                if (!_counters.TryGetValue(stream, out counter!))
                    _counters[stream] = counter = new Counter(position);
            List<Action> ready;
            lock (counter)
            {
                // A shared stream moves with its writers' own announcements.
                if (counter.Writers is not null)
                    continue;
                counter.Last = counter.ReservedUpTo = Math.Max(counter.Last, position);
                ready = counter.Ready();
            }
            Run(ready);
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
            if (_following && _writesEvents && IdentifierStreams.Contains(stream))
            {
                // Nothing reserved yet: the first position reserves a block.
                var own = new Counter(0) { OwnBlocks = true };
                lock (_counters)
                    _counters[stream] = own;
                return own;
            }
            // Positions handed out by the sequence while the events stream was shared are taken, whatever the blocks say
            // (committed at once, outside the caller's transaction, which must not hold the row block reservations update).
            if (!_following && stream == SharedStream && s.Database.Engine == DatabaseEngine.Postgres)
                await s.Database.ExecuteOutsidePoolAsync<long>($"""
                    UPDATE stream_positions SET position = GREATEST(position, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {SharedStream}_seq))
                    WHERE stream = '{SharedStream}' RETURNING position
                    """, new { }, CancellationToken.None);
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
