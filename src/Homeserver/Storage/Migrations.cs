namespace Matrix.Homeserver.Storage;

/// <summary>
/// Versioned schema migrations, applied in order at start-up inside one transaction each.
/// The SQL is written to run unchanged on SQLite and PostgreSQL; never edit a released migration, add a new one.
/// </summary>
public static class Migrations
{
    private static readonly (int Version, string Sql)[] All =
    [
        (1, """
            CREATE TABLE users (
                user_id TEXT PRIMARY KEY,
                password_hash TEXT NULL,
                is_admin BIGINT NOT NULL DEFAULT 0,
                deactivated BIGINT NOT NULL DEFAULT 0,
                created_ts BIGINT NOT NULL
            );
            CREATE TABLE devices (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                display_name TEXT NULL,
                last_seen_ip TEXT NULL,
                last_seen_ts BIGINT NULL,
                created_ts BIGINT NOT NULL,
                PRIMARY KEY (user_id, device_id)
            );
            CREATE TABLE access_tokens (
                token_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                expires_ts BIGINT NULL,
                refresh_token_hash TEXT NULL,
                used BIGINT NOT NULL DEFAULT 0
            );
            CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);
            CREATE TABLE refresh_tokens (
                token_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                expires_ts BIGINT NULL,
                predecessor_hash TEXT NULL
            );
            CREATE INDEX refresh_tokens_device ON refresh_tokens (user_id, device_id);
            CREATE INDEX refresh_tokens_predecessor ON refresh_tokens (predecessor_hash);
            CREATE TABLE login_tokens (
                token_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                expires_ts BIGINT NOT NULL
            );
            CREATE TABLE uia_sessions (
                session_id TEXT PRIMARY KEY,
                method TEXT NOT NULL,
                path TEXT NOT NULL,
                user_id TEXT NULL,
                completed TEXT NOT NULL,
                registration_token TEXT NULL,
                created_ts BIGINT NOT NULL
            );
            CREATE TABLE registration_tokens (
                token TEXT PRIMARY KEY,
                uses_allowed BIGINT NULL,
                pending BIGINT NOT NULL DEFAULT 0,
                completed BIGINT NOT NULL DEFAULT 0,
                expiry_time BIGINT NULL
            );
            CREATE TABLE account_data (
                user_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                data_type TEXT NOT NULL,
                content TEXT NOT NULL,
                PRIMARY KEY (user_id, room_id, data_type)
            );
            CREATE TABLE profile_fields (
                user_id TEXT NOT NULL,
                field TEXT NOT NULL,
                value_json TEXT NOT NULL,
                PRIMARY KEY (user_id, field)
            );
            """),
    ];

    public static int LatestVersion => All[^1].Version;

    public static async Task ApplyAsync(Database database, ILogger logger, CancellationToken ct)
    {
        await database.WriteAsync(async session =>
        {
            if (database.Engine == DatabaseEngine.Postgres)
                // Several processes may start at once against one database: only one migrates.
                await session.ExecuteAsync("SELECT pg_advisory_xact_lock(7345001)");
            await session.ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)");
            var current = await session.ExecuteScalarAsync<long?>("SELECT MAX(version) FROM schema_version") ?? 0;
            if (current > LatestVersion)
                throw new InvalidOperationException(
                    $"the database schema is version {current}, newer than this server's {LatestVersion}: run a newer server");
            foreach (var (version, sql) in All.Where(m => m.Version > current))
            {
                await session.ExecuteAsync(sql);
                await session.ExecuteAsync("INSERT INTO schema_version (version) VALUES (@version)", new { version = (long)version });
                logger.LogInformation("Applied database migration {Version}", version);
            }
        }, ct);
    }
}
