using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Matrix.Homeserver.Tests;

/// <summary>The stores against a real database; the same tests run on SQLite and PostgreSQL.</summary>
public abstract class StoreTests(DatabaseFixture fixture)
{
    private Database Db => fixture.Database;
    private static string NewUser() => $"@u{Guid.NewGuid():N}:test";

    [Fact]
    public async Task Migrations_are_idempotent()
    {
        await Migrations.ApplyAsync(Db, NullLogger.Instance, CancellationToken.None);
        var version = await Db.ReadAsync(s => s.ExecuteScalarAsync<long>("SELECT MAX(version) FROM schema_version"), CancellationToken.None);
        Assert.Equal(Migrations.LatestVersion, version);
    }

    /// <summary>
    /// On SQLite, writes that queue while another runs are committed together, each in a savepoint (Database.SqliteWrites);
    /// each write is still all or nothing: a failing one takes back its own statements only and sees its exception, and
    /// every write hears whether it committed once the transaction has.
    /// </summary>
    [Fact]
    public async Task Writes_queued_together_each_commit_or_fail_alone()
    {
        var table = "queued_" + Guid.NewGuid().ToString("N")[..12];
        await Db.WriteAsync(s => s.ExecuteAsync($"CREATE TABLE {table} (k TEXT PRIMARY KEY)"), CancellationToken.None);
        var holding = new TaskCompletionSource();
        var held = new TaskCompletionSource();
        var blocker = Db.WriteAsync(async s =>
        {
            await s.ExecuteAsync($"INSERT INTO {table} (k) VALUES ('first')");
            held.SetResult();
            await holding.Task;
        }, CancellationToken.None);
        await held.Task;
        var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        Task Insert(string key, bool fail) => Db.WriteAsync(async s =>
        {
            s.OnCompleted(committed => outcomes[key] = committed);
            await s.ExecuteAsync($"INSERT INTO {table} (k) VALUES (@key)", new { key });
            await s.ExecuteAsync($"INSERT INTO {table} (k) VALUES (@key)", new { key = key + "-second" });
            if (fail)
                throw new InvalidOperationException("refused " + key);
        }, CancellationToken.None);
        var writes = new[] { Insert("a", false), Insert("b", true), Insert("c", false), Insert("d", false) };
        // The held write's key again: a failing statement, taken back with its write alone.
        var duplicate = Insert("first", false);
        holding.SetResult();
        await blocker;
        await writes[0];
        Assert.Equal("refused b", (await Assert.ThrowsAsync<InvalidOperationException>(() => writes[1])).Message);
        await writes[2];
        await writes[3];
        await Assert.ThrowsAnyAsync<Exception>(() => duplicate);
        var keys = await Db.ReadAsync(s => s.QueryAsync<string>($"SELECT k FROM {table} ORDER BY k"), CancellationToken.None);
        Assert.Equal(["a", "a-second", "c", "c-second", "d", "d-second", "first"], keys);
        Assert.True(outcomes["c"] && outcomes["d"]);
        Assert.False(outcomes["b"]);
    }

    [Fact]
    public async Task Oauth_clients_that_signed_nobody_in_are_removed_once_old_and_the_others_kept()
    {
        var store = new Accounts.OAuth.OAuthClientStore();
        var (unused, recent, used) = ("unused" + Guid.NewGuid().ToString("N")[..8], "recent" + Guid.NewGuid().ToString("N")[..8], "used" + Guid.NewGuid().ToString("N")[..8]);
        await Db.WriteAsync(async s =>
        {
            await store.InsertAsync(s, unused, new System.Text.Json.Nodes.JsonObject(), 1_000);
            await store.InsertAsync(s, used, new System.Text.Json.Nodes.JsonObject(), 1_000);
            await store.InsertAsync(s, recent, new System.Text.Json.Nodes.JsonObject(), 5_000);
            await s.ExecuteAsync("INSERT INTO oauth_sessions (user_id, device_id, client_id, scope, created_ts) VALUES ('@a:x', @d, @used, 's', 1)",
                new { d = used, used });
        }, CancellationToken.None);
        await Db.WriteAsync(s => store.DeleteUnusedAsync(s, before: 2_000), CancellationToken.None);
        Assert.Null(await Db.ReadAsync(s => store.GetAsync(s, unused), CancellationToken.None));
        Assert.NotNull(await Db.ReadAsync(s => store.GetAsync(s, used), CancellationToken.None));
        Assert.NotNull(await Db.ReadAsync(s => store.GetAsync(s, recent), CancellationToken.None));
    }

    [Fact]
    public async Task A_user_id_can_only_be_taken_once()
    {
        var users = new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus));
        var id = NewUser();
        Assert.True(await Db.WriteAsync(s => users.InsertAsync(s, id, "hash", false, 1), CancellationToken.None));
        Assert.False(await Db.WriteAsync(s => users.InsertAsync(s, id, "other", true, 2), CancellationToken.None));
        var row = await Db.ReadAsync(s => users.GetAsync(s, id), CancellationToken.None);
        Assert.Equal("hash", row!.PasswordHash);
        Assert.Equal(0, row.IsAdmin);
    }

    [Fact]
    public async Task A_failed_transaction_writes_nothing()
    {
        var users = new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus));
        var id = NewUser();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Db.WriteAsync(async s =>
        {
            await users.InsertAsync(s, id, null, false, 1);
            throw new InvalidOperationException("boom");
        }, CancellationToken.None));
        Assert.Null(await Db.ReadAsync(s => users.GetAsync(s, id), CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_registrations_of_one_name_have_exactly_one_winner()
    {
        var users = new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus));
        var id = NewUser();
        var attempts = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            Db.WriteAsync(s => users.InsertAsync(s, id, $"hash{i}", false, i), CancellationToken.None)));
        Assert.Single(attempts, won => won);
    }

    [Fact]
    public async Task Deferred_writes_are_seen_by_later_reads_and_fail_with_their_transaction()
    {
        var user = NewUser();
        var seen = await Db.WriteAsync(async s =>
        {
            await s.DeferAsync("INSERT INTO users (user_id, password_hash, is_admin, deactivated, created_ts) VALUES (@user, NULL, 0, 0, @ts)", new { user, ts = 1L });
            var args = new SqlArgs();
            args.Add("user", user);
            await s.DeferAsync("UPDATE users SET is_admin = 1 WHERE user_id = @user", args);
            return await s.QuerySingleOrDefaultAsync<long>("SELECT is_admin FROM users WHERE user_id = @user", new { user });
        }, CancellationToken.None);
        Assert.Equal(1, seen);

        // A deferred statement that fails (a duplicate key) fails the whole transaction, the writes before it included.
        var other = NewUser();
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => Db.WriteAsync(async s =>
        {
            await s.DeferAsync("INSERT INTO users (user_id, password_hash, is_admin, deactivated, created_ts) VALUES (@other, NULL, 0, 0, 1)", new { other });
            await s.DeferAsync("INSERT INTO users (user_id, password_hash, is_admin, deactivated, created_ts) VALUES (@user, NULL, 0, 0, 1)", new { user });
        }, CancellationToken.None));
        Assert.Null(await Db.ReadAsync(s => new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus)).GetAsync(s, other), CancellationToken.None));
    }

    [Fact]
    public async Task Stream_positions_become_visible_only_below_every_open_transaction()
    {
        var streams = new StreamPositions();
        Task<long> Current() => Db.ReadAsync(s => streams.CurrentAsync(s, "presence"), CancellationToken.None);
        var before = await Current();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Db.WriteAsync<long>(async s =>
        {
            await streams.NextAsync(s, "presence");
            throw new InvalidOperationException("the transaction fails");
        }, CancellationToken.None));
        var first = await Db.WriteAsync(s => streams.NextAsync(s, "presence"), CancellationToken.None);
        Assert.True(first > before);
        Assert.Equal(first, await Current());
        if (Db.Engine != DatabaseEngine.Postgres)
            return; // SQLite has one writer at a time: no transaction can overtake another.

        var held = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var slow = Db.WriteAsync(async s =>
        {
            var position = await streams.NextAsync(s, "presence");
            held.SetResult();
            await release.Task;
            return position;
        }, CancellationToken.None);
        await held.Task;
        var fast = await Db.WriteAsync(s => streams.NextAsync(s, "presence"), CancellationToken.None);
        // The later position is committed, the earlier still open: readers must not move past the earlier one, and
        // whoever waits to announce the later one is told when the earlier one ends.
        Assert.Equal(first, await Current());
        var announced = false;
        streams.WhenVisible("presence", fast, () => announced = true);
        Assert.False(announced);
        release.SetResult();
        Assert.True(await slow < fast);
        Assert.True(announced);
        Assert.Equal(fast, await Current());
    }

    [Fact]
    public async Task Batched_reads_each_get_their_own_rows_and_arguments()
    {
        var users = new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus));
        var (a, b) = (NewUser(), NewUser());
        await Db.WriteAsync(async s =>
        {
            await users.InsertAsync(s, a, "hash", false, 1);
            await users.InsertAsync(s, b, null, true, 2);
        }, CancellationToken.None);
        var first = SqlReads.Rows<string>("SELECT user_id FROM users WHERE user_id = @userId", new { userId = a });
        var second = new SqlRead<long, long>("SELECT is_admin FROM users WHERE user_id = @userId", new { userId = b }, rows => rows.Single());
        var none = SqlReads.Rows<string>("SELECT user_id FROM users WHERE user_id = @userId", new { userId = "@nobody:test" });
        Assert.Throws<InvalidOperationException>(() => first.Result);
        await Db.ReadAsync(async s =>
        {
            await s.ReadAllAsync([first, second, none]);
            return true;
        }, CancellationToken.None);
        Assert.Equal([a], first.Result);
        Assert.Equal(1, second.Result);
        Assert.Empty(none.Result);
    }

    [Fact]
    public async Task Cached_token_lookups_go_stale_with_every_token_or_user_write()
    {
        var cache = new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus);
        var (tokens, users) = (new TokenStore(cache), new UserStore(cache));
        var user = NewUser();
        var (token, hash) = ("syt_c1" + user, Secrets.Hash("syt_c1" + user));
        await Db.WriteAsync(async s =>
        {
            await users.InsertAsync(s, user, "hash", false, 1);
            await tokens.InsertAccessTokenAsync(s, hash, user, "D1", 1, null, null);
        }, CancellationToken.None);
        async Task<bool> LookUpAndKeep()
        {
            var generation = cache.Generation;
            var (row, owner) = (await Db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, hash), CancellationToken.None))!.Value;
            cache.Store(hash, generation, row, owner);
            return cache.GetByToken(token) is not null;
        }
        Assert.True(await LookUpAndKeep());
        Assert.Equal(hash, cache.GetByToken(token)!.TokenHash);
        Assert.Null(cache.GetByToken(token + "x"));

        await Db.WriteAsync(s => users.SetLockedAsync(s, user, true), CancellationToken.None);
        Assert.Null(cache.GetByToken(token));
        Assert.True(await LookUpAndKeep());
        Assert.Equal(1, cache.GetByToken(token)!.User.Locked);

        // A lookup that read before a write committed cannot keep what it read.
        var generation = cache.Generation;
        await Db.WriteAsync(s => tokens.DeleteAccessTokenAsync(s, hash), CancellationToken.None);
        Assert.Null(cache.GetByToken(token));
        cache.Store(hash, generation, new AccessTokenRow(), new UserRow());
        Assert.Null(cache.GetByToken(token));
    }

    [Fact]
    public async Task Tokens_are_found_by_hash_with_their_user_and_deleted_with_their_device()
    {
        var tokens = new TokenStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus));
        var user = NewUser();
        await Db.WriteAsync(async s =>
        {
            await new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus)).InsertAsync(s, user, "hash", true, 1);
            await tokens.InsertAccessTokenAsync(s, "h1", user, "D1", 1, null, null);
            await tokens.InsertAccessTokenAsync(s, "h2", user, "D2", 1, 500, null);
        }, CancellationToken.None);
        var (found, owner) = (await Db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, "h2"), CancellationToken.None))!.Value;
        Assert.Equal(("D2", 500L, user), (found.DeviceId, found.ExpiresTs, found.UserId));
        Assert.Equal((user, 1L, "hash"), (owner.UserId, owner.IsAdmin, owner.PasswordHash));
        await Db.WriteAsync(s => tokens.DeleteForDeviceAsync(s, user, "D1"), CancellationToken.None);
        Assert.Null(await Db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, "h1"), CancellationToken.None));
        Assert.NotNull(await Db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, "h2"), CancellationToken.None));

        // A user without a password (directory and application-service accounts) is found with its token all the same.
        var external = NewUser();
        await Db.WriteAsync(async s =>
        {
            await new UserStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus)).InsertAsync(s, external, null, false, 1);
            await tokens.InsertAccessTokenAsync(s, "h3", external, "D3", 1, null, null);
        }, CancellationToken.None);
        var (_, externalUser) = (await Db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, "h3"), CancellationToken.None))!.Value;
        Assert.Equal((external, (string?)null, 0L), (externalUser.UserId, externalUser.PasswordHash, externalUser.IsAdmin));
    }

    [Fact]
    public async Task Login_tokens_are_single_use_and_expire()
    {
        var tokens = new TokenStore(new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus));
        var user = NewUser();
        await Db.WriteAsync(async s =>
        {
            await tokens.InsertLoginTokenAsync(s, "fresh" + user, user, 1000);
            await tokens.InsertLoginTokenAsync(s, "stale" + user, user, 10);
        }, CancellationToken.None);
        Assert.Equal(user, await Db.WriteAsync(s => tokens.TakeLoginTokenAsync(s, "fresh" + user, 100), CancellationToken.None));
        Assert.Null(await Db.WriteAsync(s => tokens.TakeLoginTokenAsync(s, "fresh" + user, 100), CancellationToken.None));
        Assert.Null(await Db.WriteAsync(s => tokens.TakeLoginTokenAsync(s, "stale" + user, 100), CancellationToken.None));
    }

    [Fact]
    public async Task Registration_token_uses_are_never_over_reserved_under_concurrency()
    {
        var store = new RegistrationTokenStore();
        var token = "t" + Guid.NewGuid().ToString("N")[..10];
        await Db.WriteAsync(s => store.InsertAsync(s, token, 3, null), CancellationToken.None);
        var reserved = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ =>
            Db.WriteAsync(s => store.ReserveAsync(s, token, 0), CancellationToken.None)));
        Assert.Equal(3, reserved.Count(r => r));
        await Db.WriteAsync(s => store.CompleteAsync(s, token), CancellationToken.None);
        await Db.WriteAsync(s => store.ReleaseAsync(s, token), CancellationToken.None);
        var row = await Db.ReadAsync(s => store.GetAsync(s, token), CancellationToken.None);
        Assert.Equal(1, row!.Completed);
        Assert.Equal(1, row.Pending);
        Assert.True(row.IsUsable(0));
    }

    [Fact]
    public async Task Account_data_upserts_per_user_room_and_type()
    {
        var store = new AccountDataStore();
        var user = NewUser();
        await Db.WriteAsync(async s =>
        {
            await store.SetAsync(s, user, AccountDataStore.Global, "m.direct", "{\"a\":1}", 1);
            await store.SetAsync(s, user, "!r:test", "m.direct", "{\"room\":true}", 2);
            await store.SetAsync(s, user, AccountDataStore.Global, "m.direct", "{\"a\":2}", 3);
        }, CancellationToken.None);
        Assert.Equal("{\"a\":2}", await Db.ReadAsync(s => store.GetAsync(s, user, AccountDataStore.Global, "m.direct"), CancellationToken.None));
        Assert.Equal("{\"room\":true}", await Db.ReadAsync(s => store.GetAsync(s, user, "!r:test", "m.direct"), CancellationToken.None));
        var changed = await Db.ReadAsync(s => s.QueryAsync(store.ChangedSince(user, 2, 3)), CancellationToken.None);
        Assert.Equal(("", "{\"a\":2}"), (Assert.Single(changed).RoomId, changed[0].Content));
    }

    /// <summary>
    /// Rows inserted together arrive value for value: text with quotes, backslashes and characters outside ASCII, nulls,
    /// numbers beyond 32 bits, and the conflict clause applied to rows already there.
    /// </summary>
    [Fact]
    public async Task Rows_inserted_together_keep_every_value_and_their_conflict_clause()
    {
        var table = "rows_" + Guid.NewGuid().ToString("N")[..12];
        await Db.WriteAsync(s => s.ExecuteAsync($"CREATE TABLE {table} (k TEXT PRIMARY KEY, label TEXT NULL, n BIGINT NOT NULL)"), CancellationToken.None);
        string[] keys = ["plain", "quote \" \\ back", "snow \u2603 emoji \U0001F600", "nul-free \t tab"];
        string?[] labels = ["a", null, "{\"json\": [1]}", "'single'"];
        long[] numbers = [0, long.MaxValue, -7, 1L << 40];
        async Task InsertAsync(string?[] labelColumn, long[] numberColumn) => await Db.WriteAsync(async s =>
        {
            foreach (var (sql, args) in RowsInsert.Statements(Db.Engine, $"{table} (k, label, n)", [keys, labelColumn, numberColumn],
                "ON CONFLICT (k) DO UPDATE SET n = " + table + ".n + excluded.n"))
                await s.DeferAsync(sql, args);
        }, CancellationToken.None);
        await InsertAsync(labels, numbers);
        await InsertAsync(["x", "x", "x", "x"], [1, 0, 1, 1]);
        var rows = (await Db.ReadAsync(s => s.QueryAsync<(string K, string? Label, long N)>($"SELECT k, label, n FROM {table}"), CancellationToken.None))
            .ToDictionary(r => r.K);
        Assert.Equal(keys.Order(StringComparer.Ordinal), rows.Keys.Order(StringComparer.Ordinal));
        for (var i = 0; i < keys.Length; i++)
            Assert.Equal((labels[i], numbers[i] + (i == 1 ? 0 : 1)), (rows[keys[i]].Label, rows[keys[i]].N));
    }

    [Fact]
    public async Task State_groups_store_deltas_and_load_every_snapshot_exactly()
    {
        var groups = new StateGroupStore(new StreamPositions());
        var roomId = $"!{Guid.NewGuid():N}:test";
        var expected = new List<(long Group, Dictionary<Matrix.Federation.Events.StateKey, string> State)>();
        var state = new Dictionary<Matrix.Federation.Events.StateKey, string>();
        long? previous = null;
        for (var i = 0; i < StateGroupStore.MaxDeltaChain * 2 + 5; i++)
        {
            var before = new Dictionary<Matrix.Federation.Events.StateKey, string>(state);
            state[new("m.room.member", $"@u{i % 30}:test")] = $"$e{i}";
            var snapshot = new Dictionary<Matrix.Federation.Events.StateKey, string>(state);
            var group = await Db.WriteAsync(s => groups.CreateAsync(s, roomId, previous, before, snapshot), CancellationToken.None);
            expected.Add((group, snapshot));
            previous = group;
        }
        foreach (var (group, snapshot) in expected)
            Assert.Equal(snapshot.OrderBy(e => e.Key.Key), (await Db.ReadAsync(s => groups.LoadAsync(s, group), CancellationToken.None)).OrderBy(e => e.Key.Key));
        var rows = await Db.ReadAsync(s => s.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM state_group_entries e JOIN state_groups g ON g.group_id = e.group_id WHERE g.room_id = @roomId", new { roomId }), CancellationToken.None);
        Assert.True(rows < expected.Count * 5, $"state is stored as deltas, not copies ({rows} rows for {expected.Count} groups)");
    }
}

public sealed class SqliteStoreTests(SqliteDatabase db) : StoreTests(db), IClassFixture<SqliteDatabase>;
public sealed class PostgresStoreTests(PostgresDatabase db) : StoreTests(db), IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Sessions_run_without_jit_compilation() =>
        Assert.Equal("off", await db.Database.ReadAsync(s => s.ExecuteScalarAsync<string>("SHOW jit"), CancellationToken.None));

    [Fact]
    public async Task A_shared_events_stream_is_seen_up_to_where_every_writer_has_committed_all_of_its_own()
    {
        // Two writers (the main process and an event writer) and a reader, each with its own positions, as in three
        // processes; what they would tell each other over Redis is passed by hand.
        string[] writers = ["main", "writer1"];
        var start = await db.Database.ReadAsync(s => s.ExecuteScalarAsync<long>("SELECT position FROM stream_positions WHERE stream = 'events'"), CancellationToken.None);
        var (main, writer, reader) = (new StreamPositions(), new StreamPositions(), new StreamPositions());
        main.ShareAmongWriters(writers, "main", start, await StreamPositions.StartSharedAsync(db.Database, CancellationToken.None));
        writer.ShareAmongWriters(writers, "writer1", start, await StreamPositions.StartSharedAsync(db.Database, CancellationToken.None));
        reader.ShareAmongWriters(writers, null, start, null);
        long Seen(StreamPositions streams) => streams.TryCurrent("events", out var position) ? position : throw new InvalidOperationException();
        void Tell(string from, StreamPositions by, params StreamPositions[] to)
        {
            foreach (var process in to)
                process.FollowWriter(from, by.OwnSharedPosition(), live: true);
        }

        var held = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var slow = db.Database.WriteAsync(async s =>
        {
            var position = await main.NextAsync(s, "events");
            held.SetResult();
            await release.Task;
            return position;
        }, CancellationToken.None);
        await held.Task;
        var fast = await db.Database.WriteAsync(s => writer.NextAsync(s, "events"), CancellationToken.None);
        Tell("writer1", writer, main, reader);
        Tell("main", main, writer, reader);
        // The event writer committed a later position than the main process's, still open: no one may read up to it.
        Assert.True(Seen(reader) < fast);
        var woken = false;
        reader.WhenVisible("events", fast, () => woken = true);
        // A writer with a position in flight stays where it is whatever it hears...
        Assert.False(main.FollowWriter("writer1", fast, live: true));
        Assert.False(woken);

        // ...and once its transaction is over it moves up to what it heard: then readers see the later position too.
        release.SetResult();
        var earlier = await slow;
        Assert.True(earlier < fast);
        Assert.Equal(fast, main.OwnSharedPosition());
        Tell("main", main, writer, reader);
        Assert.Equal(fast, Seen(reader));
        Assert.True(woken);

        // An idle writer moves up to another's position as soon as it hears it.
        var later = await db.Database.WriteAsync(s => writer.NextAsync(s, "events"), CancellationToken.None);
        Assert.True(main.FollowWriter("writer1", later, live: true));
        Assert.Equal(later, main.OwnSharedPosition());

        // A writer gone quiet with its last word below the others' holds readers back until found gone.
        Tell("writer1", writer, reader);
        Assert.Equal(fast, Seen(reader));
        Assert.Contains(reader.WritersBehind(), w => w.Writer == "main");
        reader.WriterGone("main", fast);
        Assert.Equal(later, Seen(reader));
        // Back, it speaks first, from after everything the sequence handed out.
        var restarted = new StreamPositions();
        restarted.ShareAmongWriters(writers, "main", start, await StreamPositions.StartSharedAsync(db.Database, CancellationToken.None));
        Assert.True(restarted.OwnSharedPosition() >= later);
        Tell("main", restarted, reader);
        Assert.Equal(later, Seen(reader));
        var next = await db.Database.WriteAsync(s => restarted.NextAsync(s, "events"), CancellationToken.None);
        Assert.True(next > later);
    }

    [Fact]
    public async Task A_rooms_event_range_is_read_within_its_bounds_by_plans_made_without_the_values()
    {
        // Two rooms, as in a small deployment: a busy one, and a quiet one whose events all lie before the busy one's
        // last 19,900. Backfill-range (negative) positions keep them apart from what other tests write.
        var (busy, quiet) = ($"!busy{Guid.NewGuid():N}:test", $"!quiet{Guid.NewGuid():N}:test");
        const long first = -1_000_000_000;
        const int count = 20_000;
        await db.Database.WriteAsync(s => s.ExecuteAsync("""
            INSERT INTO events (stream_ordering, event_id, room_id, type, sender, depth, origin_server_ts, state_group, json)
            SELECT @first + i, '$' || @busy || i, CASE WHEN i <= 1000 AND i % 10 = 0 THEN @quiet ELSE @busy END, 'm.room.message', '@a:test', i, i, 0, '{}'
            FROM generate_series(1, @count) i;
            ANALYZE events;
            """, new { first, busy, quiet, count }), CancellationToken.None);
        var rooms = SingleProcess.Rooms();
        const long last = first + count;

        // A sync that finds a few new events in the busy room, and the first page of the quiet one.
        Assert.InRange(await BuffersReadAsync(rooms.RoomEvents(busy, last - 5, last, 50, newestFirst: true)), 1, 20);
        Assert.InRange(await BuffersReadAsync(rooms.RoomEvents(quiet, long.MinValue, last, 10, newestFirst: true)), 1, 20);
    }

    /// <summary>
    /// The buffers a read touches when run with a generic plan, as statements prepared by the server end up with (an
    /// EXPLAIN of the statement with its arguments would plan for their values).
    /// </summary>
    private async Task<long> BuffersReadAsync(SqlRead read)
    {
        var args = read.Args!.GetType().GetProperties().ToDictionary(p => p.Name, p => p.GetValue(read.Args)!);
        var names = Regex.Matches(read.Sql, @"@(\w+)").Select(m => m.Groups[1].Value).Distinct().ToList();
        var sql = Regex.Replace(read.Sql, @"@(\w+)", m => "$" + (names.IndexOf(m.Groups[1].Value) + 1));
        var types = string.Join(", ", names.Select(n => args[n] is string ? "text" : "bigint"));
        var values = string.Join(", ", names.Select(n => args[n] is string text ? $"'{text}'" : Convert.ToString(args[n], CultureInfo.InvariantCulture)));
        return await db.Database.WriteAsync(async s =>
        {
            await s.ExecuteAsync("SET LOCAL plan_cache_mode = force_generic_plan");
            await s.ExecuteAsync($"PREPARE range_read ({types}) AS {sql}");
            var plan = JsonNode.Parse(await s.ExecuteScalarAsync<string>($"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE range_read ({values})"))![0]!["Plan"]!;
            await s.ExecuteAsync("DEALLOCATE range_read");
            return (long)plan["Shared Hit Blocks"]! + (long)plan["Shared Read Blocks"]!;
        }, CancellationToken.None);
    }
}
