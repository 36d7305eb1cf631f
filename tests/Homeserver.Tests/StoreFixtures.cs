using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Matrix.Homeserver.Tests;

/// <summary>A migrated database per test class: a temporary SQLite file, or a fresh database on test.sh's PostgreSQL.</summary>
public abstract class DatabaseFixture : IAsyncLifetime
{
    public Database Database { get; private set; } = null!;

    protected abstract Task<DatabaseConfig> CreateAsync();
    protected virtual Task DropAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        Database = new Database(await CreateAsync(), Path.GetTempPath(), new Observability.ServerMetrics());
        await Migrations.ApplyAsync(Database, NullLogger.Instance, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await Database.DisposeAsync();
        await DropAsync();
    }
}

public sealed class SqliteDatabase : DatabaseFixture
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"hs-store-{Guid.NewGuid():N}.db");

    protected override Task<DatabaseConfig> CreateAsync() =>
        Task.FromResult(new DatabaseConfig { Engine = "sqlite", SqlitePath = _path });

    protected override Task DropAsync()
    {
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(_path)!, Path.GetFileName(_path) + "*"))
            File.Delete(file);
        return Task.CompletedTask;
    }
}

public sealed class PostgresDatabase : DatabaseFixture
{
    private readonly string _name = "hs_store_" + Guid.NewGuid().ToString("N")[..12];

    private static string Admin => Environment.GetEnvironmentVariable("HS_TEST_POSTGRES") is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException("HS_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts PostgreSQL");

    protected override async Task<DatabaseConfig> CreateAsync()
    {
        await ExecuteAsync($"CREATE DATABASE {_name}");
        return new DatabaseConfig
        {
            Engine = "postgres",
            ConnectionString = new NpgsqlConnectionStringBuilder(Admin) { Database = _name }.ConnectionString,
        };
    }

    protected override async Task DropAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await ExecuteAsync($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)");
    }

    private static async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>The replication link of a process that is the whole deployment (it sends nothing), and its room store.</summary>
public static class SingleProcess
{
    public static Replication.ReplicationBus Bus { get; } = new(new Config.HomeserverConfig(), new Observability.ServerMetrics(),
        Microsoft.Extensions.Logging.Abstractions.NullLogger<Replication.ReplicationBus>.Instance);

    public static Rooms.RoomStore Rooms()
    {
        var (config, index) = (new Config.HomeserverConfig(), new Rooms.RecentEventIndex(new Config.HomeserverConfig()));
        return new(index, new Rooms.RecentTransactionIds(), new Rooms.MembershipCache(config, Bus), new Rooms.RecentRoomRows(config),
            new Rooms.FollowedRoomRows(config, index));
    }
}
