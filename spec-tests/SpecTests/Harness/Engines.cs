using Npgsql;

namespace Matrix.SpecTests.Harness;

/// <summary>A database for one homeserver instance: a SQLite file, or a fresh PostgreSQL database on the test cluster.</summary>
public abstract class TestDatabase : IAsyncDisposable
{
    public abstract string Yaml { get; }
    public abstract string Name { get; }

    public static async Task<TestDatabase> CreateAsync(string engine) => engine switch
    {
        "sqlite" => new SqliteTestDatabase(),
        "postgres" => await PostgresTestDatabase.CreateAsync(),
        _ => throw new ArgumentException(engine),
    };

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class SqliteTestDatabase : TestDatabase
{
    public override string Name => "sqlite";
    public override string Yaml => "database:\n  engine: sqlite\n";
}

public sealed class PostgresTestDatabase : TestDatabase
{
    private readonly string _admin;
    private readonly string _database;

    private PostgresTestDatabase(string admin, string database)
    {
        _admin = admin;
        _database = database;
    }

    public override string Name => "postgres";

    /// <summary>The connection string of this instance's own database (benchmarks seed it directly).</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder(_admin) { Database = _database }.ConnectionString;

    public override string Yaml => $"database:\n  engine: postgres\n  connection_string: \"{ConnectionString}\"\n";

    /// <summary>The admin connection string of the test cluster that test.sh starts.</summary>
    public static string AdminConnectionString => Environment.GetEnvironmentVariable("HS_TEST_POSTGRES") is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException("HS_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts PostgreSQL");

    public static async Task<PostgresTestDatabase> CreateAsync()
    {
        var admin = AdminConnectionString;
        var name = "hs_" + Guid.NewGuid().ToString("N")[..16];
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return new PostgresTestDatabase(admin, name);
    }

    public override async ValueTask DisposeAsync()
    {
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>One running homeserver with its own database: shared by a test class, or owned by one test.</summary>
public class ServerFixture(string engine, string extraYaml = "", bool metricsListener = false) : IAsyncLifetime
{
    private TestDatabase? _database;

    public HomeserverProcess Server { get; private set; } = null!;
    public MatrixClient Client => new(Server.BaseUrl, Server.ServerName);

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        Server = new HomeserverProcess(_database.Yaml, extraYaml, metricsListener: metricsListener);
        await Server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
    }
}

public sealed class SqliteServer() : ServerFixture("sqlite");

public sealed class PostgresServer() : ServerFixture("postgres");
