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
        (2, """
            CREATE TABLE stream_positions (
                stream TEXT PRIMARY KEY,
                position BIGINT NOT NULL
            );
            INSERT INTO stream_positions (stream, position) VALUES ('events', 0);
            INSERT INTO stream_positions (stream, position) VALUES ('state_groups', 0);
            INSERT INTO stream_positions (stream, position) VALUES ('account_data', 0);
            INSERT INTO stream_positions (stream, position) VALUES ('receipts', 0);
            INSERT INTO stream_positions (stream, position) VALUES ('presence', 0);
            CREATE TABLE presence (
                user_id TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                status_msg TEXT NULL,
                last_active_ts BIGINT NOT NULL,
                stream_id BIGINT NOT NULL
            );
            CREATE INDEX presence_stream ON presence (stream_id);
            ALTER TABLE account_data ADD COLUMN stream_id BIGINT NOT NULL DEFAULT 0;
            CREATE INDEX account_data_stream ON account_data (user_id, stream_id);
            CREATE TABLE receipts (
                room_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                receipt_type TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                stream_id BIGINT NOT NULL,
                PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
            );
            CREATE INDEX receipts_stream ON receipts (room_id, stream_id);
            CREATE TABLE rooms (
                room_id TEXT PRIMARY KEY,
                room_version TEXT NOT NULL,
                creator TEXT NOT NULL,
                is_public BIGINT NOT NULL DEFAULT 0,
                created_ts BIGINT NOT NULL
            );
            CREATE TABLE events (
                stream_ordering BIGINT PRIMARY KEY,
                event_id TEXT NOT NULL UNIQUE,
                room_id TEXT NOT NULL,
                type TEXT NOT NULL,
                state_key TEXT NULL,
                sender TEXT NOT NULL,
                depth BIGINT NOT NULL,
                origin_server_ts BIGINT NOT NULL,
                state_group BIGINT NOT NULL,
                redacted_by TEXT NULL,
                rejected BIGINT NOT NULL DEFAULT 0,
                soft_failed BIGINT NOT NULL DEFAULT 0,
                outlier BIGINT NOT NULL DEFAULT 0,
                json TEXT NOT NULL
            );
            CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
            CREATE INDEX events_membership ON events (state_key, type, stream_ordering);
            CREATE TABLE state_groups (
                group_id BIGINT PRIMARY KEY,
                room_id TEXT NOT NULL,
                prev_group BIGINT NULL,
                delta_depth BIGINT NOT NULL
            );
            CREATE TABLE state_group_entries (
                group_id BIGINT NOT NULL,
                type TEXT NOT NULL,
                state_key TEXT NOT NULL,
                event_id TEXT NOT NULL,
                PRIMARY KEY (group_id, type, state_key)
            );
            CREATE TABLE current_state (
                room_id TEXT NOT NULL,
                type TEXT NOT NULL,
                state_key TEXT NOT NULL,
                event_id TEXT NOT NULL,
                membership TEXT NULL,
                PRIMARY KEY (room_id, type, state_key)
            );
            CREATE INDEX current_state_by_state_key ON current_state (state_key, type);
            CREATE TABLE forward_extremities (
                room_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                depth BIGINT NOT NULL,
                state_group BIGINT NOT NULL,
                PRIMARY KEY (room_id, event_id)
            );
            CREATE TABLE event_txn_ids (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                txn_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                PRIMARY KEY (user_id, device_id, txn_id)
            );
            CREATE TABLE room_aliases (
                alias TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                creator TEXT NOT NULL
            );
            CREATE INDEX room_aliases_room ON room_aliases (room_id);
            CREATE TABLE server_keys (
                server_name TEXT NOT NULL,
                key_id TEXT NOT NULL,
                public_key TEXT NOT NULL,
                valid_until_ts BIGINT NULL,
                expired_ts BIGINT NULL,
                fetched_ts BIGINT NOT NULL,
                PRIMARY KEY (server_name, key_id)
            );
            CREATE TABLE server_key_responses (
                server_name TEXT PRIMARY KEY,
                response_json TEXT NOT NULL,
                valid_until_ts BIGINT NOT NULL,
                fetched_ts BIGINT NOT NULL
            );
            CREATE TABLE federation_inbound_txns (
                origin TEXT NOT NULL,
                txn_id TEXT NOT NULL,
                response_json TEXT NOT NULL,
                received_ts BIGINT NOT NULL,
                PRIMARY KEY (origin, txn_id)
            );
            CREATE TABLE federation_outbox (
                id BIGINT PRIMARY KEY,
                destination TEXT NOT NULL,
                kind TEXT NOT NULL,
                json TEXT NOT NULL
            );
            CREATE INDEX federation_outbox_destination ON federation_outbox (destination, id);
            INSERT INTO stream_positions (stream, position) VALUES ('federation_outbox', 0);
            INSERT INTO stream_positions (stream, position) VALUES ('backfill', 0);
            CREATE TABLE remote_invites (
                room_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                room_version TEXT NOT NULL,
                event_json TEXT NOT NULL,
                invite_state_json TEXT NOT NULL,
                stream_ordering BIGINT NOT NULL,
                membership TEXT NOT NULL DEFAULT 'invite',
                via_server TEXT NULL,
                PRIMARY KEY (room_id, user_id)
            );
            CREATE INDEX remote_invites_user ON remote_invites (user_id, stream_ordering);
            CREATE TABLE openid_tokens (
                token_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                expires_ts BIGINT NOT NULL
            );
            CREATE TABLE user_filters (
                user_id TEXT NOT NULL,
                filter_id BIGINT NOT NULL,
                filter_json TEXT NOT NULL,
                PRIMARY KEY (user_id, filter_id)
            );
            CREATE TABLE forgotten_rooms (
                user_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                PRIMARY KEY (user_id, room_id)
            );
            """),
        (3, """
            CREATE TABLE e2e_device_keys (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                key_json TEXT NOT NULL,
                PRIMARY KEY (user_id, device_id)
            );
            CREATE TABLE e2e_one_time_keys (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                key_id TEXT NOT NULL,
                algorithm TEXT NOT NULL,
                key_json TEXT NOT NULL,
                PRIMARY KEY (user_id, device_id, key_id)
            );
            CREATE INDEX e2e_one_time_keys_algorithm ON e2e_one_time_keys (user_id, device_id, algorithm);
            CREATE TABLE e2e_fallback_keys (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                algorithm TEXT NOT NULL,
                key_id TEXT NOT NULL,
                key_json TEXT NOT NULL,
                used BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (user_id, device_id, algorithm)
            );
            CREATE TABLE e2e_cross_signing_keys (
                user_id TEXT NOT NULL,
                key_type TEXT NOT NULL,
                public_key TEXT NOT NULL,
                key_json TEXT NOT NULL,
                PRIMARY KEY (user_id, key_type)
            );
            CREATE TABLE e2e_key_signatures (
                user_id TEXT NOT NULL,
                target_key_id TEXT NOT NULL,
                signer_user_id TEXT NOT NULL,
                signer_key_id TEXT NOT NULL,
                signature TEXT NOT NULL,
                PRIMARY KEY (user_id, target_key_id, signer_user_id, signer_key_id)
            );
            CREATE TABLE device_list_changes (
                stream_id BIGINT PRIMARY KEY,
                user_id TEXT NOT NULL
            );
            CREATE INDEX device_list_changes_user ON device_list_changes (user_id, stream_id);
            INSERT INTO stream_positions (stream, position) VALUES ('device_lists', 0);
            CREATE TABLE remote_device_lists (
                user_id TEXT PRIMARY KEY,
                stream_id BIGINT NOT NULL
            );
            CREATE TABLE remote_devices (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                display_name TEXT NULL,
                key_json TEXT NULL,
                PRIMARY KEY (user_id, device_id)
            );
            CREATE TABLE to_device_messages (
                stream_id BIGINT PRIMARY KEY,
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                message_json TEXT NOT NULL
            );
            CREATE INDEX to_device_messages_device ON to_device_messages (user_id, device_id, stream_id);
            INSERT INTO stream_positions (stream, position) VALUES ('to_device', 0);
            CREATE TABLE to_device_txns (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                txn_id TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                PRIMARY KEY (user_id, device_id, txn_id)
            );
            CREATE TABLE room_key_backup_versions (
                user_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                algorithm TEXT NOT NULL,
                auth_data TEXT NOT NULL,
                etag BIGINT NOT NULL DEFAULT 0,
                deleted BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (user_id, version)
            );
            CREATE TABLE room_key_backup_keys (
                user_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                room_id TEXT NOT NULL,
                session_id TEXT NOT NULL,
                first_message_index BIGINT NOT NULL,
                forwarded_count BIGINT NOT NULL,
                is_verified BIGINT NOT NULL,
                session_data TEXT NOT NULL,
                PRIMARY KEY (user_id, version, room_id, session_id)
            );
            """),
        (4, """
            CREATE TABLE appservice_outbox (
                id BIGINT PRIMARY KEY,
                as_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                json TEXT NOT NULL
            );
            CREATE INDEX appservice_outbox_as ON appservice_outbox (as_id, id);
            INSERT INTO stream_positions (stream, position) VALUES ('appservice_outbox', 0);
            CREATE TABLE appservice_txns (
                as_id TEXT PRIMARY KEY,
                txn_id BIGINT NOT NULL,
                last_row_id BIGINT NOT NULL
            );
            """),
        (5, """
            CREATE TABLE user_external_ids (
                auth_provider TEXT NOT NULL,
                external_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                PRIMARY KEY (auth_provider, external_id)
            );
            CREATE INDEX user_external_ids_user ON user_external_ids (user_id);
            """),
        (6, """
            CREATE TABLE media (
                server_name TEXT NOT NULL,
                media_id TEXT NOT NULL,
                user_id TEXT NULL,
                content_type TEXT NULL,
                upload_name TEXT NULL,
                size_bytes BIGINT NULL,
                sha256 TEXT NULL,
                storage_key TEXT NULL,
                created_ts BIGINT NOT NULL,
                unused_expires_ts BIGINT NULL,
                authenticated BIGINT NOT NULL,
                PRIMARY KEY (server_name, media_id)
            );
            CREATE INDEX media_user ON media (user_id);
            CREATE INDEX media_pending ON media (unused_expires_ts);
            CREATE TABLE media_thumbnails (
                server_name TEXT NOT NULL,
                media_id TEXT NOT NULL,
                width BIGINT NOT NULL,
                height BIGINT NOT NULL,
                method TEXT NOT NULL,
                content_type TEXT NOT NULL,
                size_bytes BIGINT NOT NULL,
                storage_key TEXT NOT NULL,
                PRIMARY KEY (server_name, media_id, width, height, method)
            );
            CREATE TABLE url_previews (
                url TEXT PRIMARY KEY,
                og_json TEXT NOT NULL,
                fetched_ts BIGINT NOT NULL
            );
            """),
        (7, """
            CREATE TABLE event_push_actions (
                user_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                stream_ordering BIGINT NOT NULL,
                thread_id TEXT NOT NULL,
                highlight BIGINT NOT NULL,
                actions TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (user_id, event_id)
            );
            CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);
            CREATE INDEX event_push_actions_user ON event_push_actions (user_id, stream_ordering);
            CREATE TABLE pushers (
                user_id TEXT NOT NULL,
                app_id TEXT NOT NULL,
                pushkey TEXT NOT NULL,
                kind TEXT NOT NULL,
                app_display_name TEXT NOT NULL,
                device_display_name TEXT NOT NULL,
                profile_tag TEXT NULL,
                lang TEXT NOT NULL,
                data_json TEXT NOT NULL,
                device_id TEXT NULL,
                created_ts BIGINT NOT NULL,
                last_stream_ordering BIGINT NOT NULL,
                PRIMARY KEY (app_id, pushkey, user_id)
            );
            CREATE INDEX pushers_user ON pushers (user_id);
            CREATE TABLE event_relations (
                event_id TEXT PRIMARY KEY,
                relates_to_id TEXT NOT NULL,
                rel_type TEXT NOT NULL,
                aggregation_key TEXT NULL,
                room_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                type TEXT NOT NULL,
                stream_ordering BIGINT NOT NULL,
                origin_server_ts BIGINT NOT NULL
            );
            CREATE INDEX event_relations_parent ON event_relations (relates_to_id, rel_type, stream_ordering);
            CREATE INDEX event_relations_room ON event_relations (room_id, rel_type, stream_ordering);
            CREATE TABLE reports (
                report_id TEXT PRIMARY KEY,
                reporter TEXT NOT NULL,
                room_id TEXT NULL,
                event_id TEXT NULL,
                user_id TEXT NULL,
                reason TEXT NOT NULL,
                received_ts BIGINT NOT NULL
            );
            CREATE INDEX reports_received ON reports (received_ts);
            ALTER TABLE users ADD COLUMN locked BIGINT NOT NULL DEFAULT 0;
            ALTER TABLE users ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0;
            CREATE INDEX receipts_stream_id ON receipts (stream_id);
            """),
        // A sync looks up the transaction IDs of the events in its timeline by event ID.
        (8, """
            CREATE INDEX event_txn_ids_by_event ON event_txn_ids (event_id);
            """),
        // Unread counts kept per user, room and thread (a sync reads them instead of counting the notifying events
        // after the read receipts each time), started from the events unread now.
        (9, """
            CREATE TABLE unread_counts (
                user_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                notifications BIGINT NOT NULL,
                highlights BIGINT NOT NULL,
                PRIMARY KEY (user_id, room_id, thread_id)
            );
            INSERT INTO unread_counts (user_id, room_id, thread_id, notifications, highlights)
            SELECT a.user_id, a.room_id, a.thread_id, COUNT(*), SUM(a.highlight) FROM event_push_actions a
            WHERE a.stream_ordering > COALESCE((SELECT MAX(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id
                  WHERE r.room_id = a.room_id AND r.user_id = a.user_id AND r.receipt_type IN ('m.read', 'm.read.private')
                    AND (r.thread_id = '' OR r.thread_id = a.thread_id)), 0)
            GROUP BY a.user_id, a.room_id, a.thread_id;
            """),
        // Guest accounts (spec: Guest Access): limited to the module's endpoints until upgraded to a full account.
        (10, """
            ALTER TABLE users ADD COLUMN is_guest BIGINT NOT NULL DEFAULT 0;
            """),
        // Registration remembers the request that opened its UIA session (the password only as a hash) and, once done,
        // the user it made: a replay of the finished session logs that user in again (as Synapse does).
        (11, """
            ALTER TABLE uia_sessions ADD COLUMN request_json TEXT NULL;
            ALTER TABLE uia_sessions ADD COLUMN password_hash TEXT NULL;
            ALTER TABLE uia_sessions ADD COLUMN registered_user_id TEXT NULL;
            """),
        // Third-party identifiers: validation sessions of email addresses, addresses on accounts, and the identity servers
        // each is bound at; the address an m.login.email.identity stage proved, kept with its UIA session.
        (12, """
            CREATE TABLE threepid_validation_sessions (
                session_id TEXT PRIMARY KEY,
                medium TEXT NOT NULL,
                address TEXT NOT NULL,
                client_secret TEXT NOT NULL,
                purpose TEXT NOT NULL,
                token_hash TEXT NOT NULL,
                send_attempt BIGINT NOT NULL,
                next_link TEXT,
                created_ts BIGINT NOT NULL,
                expires_ts BIGINT NOT NULL,
                validated_ts BIGINT
            );
            CREATE INDEX threepid_validation_sessions_secret ON threepid_validation_sessions (client_secret, medium, address, purpose);
            CREATE TABLE user_threepids (
                medium TEXT NOT NULL,
                address TEXT NOT NULL,
                user_id TEXT NOT NULL,
                validated_ts BIGINT NOT NULL,
                added_ts BIGINT NOT NULL,
                PRIMARY KEY (medium, address)
            );
            CREATE INDEX user_threepids_user ON user_threepids (user_id);
            CREATE TABLE user_threepid_id_servers (
                user_id TEXT NOT NULL,
                medium TEXT NOT NULL,
                address TEXT NOT NULL,
                id_server TEXT NOT NULL,
                PRIMARY KEY (user_id, medium, address, id_server)
            );
            ALTER TABLE uia_sessions ADD COLUMN threepid TEXT;
            """),
        // A change only its owner is told of (a new user-signing key: whom one has verified is nobody else's business).
        (13, """
            ALTER TABLE device_list_changes ADD COLUMN owner_only BIGINT NOT NULL DEFAULT 0;
            """),
        // The user agent a device was last seen with (the admin whois API shows it beside the address).
        (14, """
            ALTER TABLE devices ADD COLUMN last_seen_user_agent TEXT NULL;
            """),
        // The account a single sign-on stage of a UIA session proved (someone other than the session's user fails it).
        (15, """
            ALTER TABLE uia_sessions ADD COLUMN sso_user_id TEXT NULL;
            """),
        // The room lists application services publish per bridged network, apart from the main directory.
        (16, """
            CREATE TABLE appservice_room_list (
                appservice_id TEXT NOT NULL,
                network_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                PRIMARY KEY (appservice_id, network_id, room_id)
            );
            """),
        // What the admin API shows and sets of an account: its type (Synapse's bot/support) and whether it was erased.
        (17, """
            ALTER TABLE users ADD COLUMN user_type TEXT NULL;
            ALTER TABLE users ADD COLUMN erased BIGINT NOT NULL DEFAULT 0;
            """),
        // Rooms an admin blocked: local users may not join or be invited to them, nor may other servers invite them.
        (18, """
            CREATE TABLE blocked_rooms (
                room_id TEXT PRIMARY KEY,
                blocked_by TEXT NOT NULL
            );
            """),
        // Media an admin quarantined (served to nobody), or protected from quarantine.
        (19, """
            ALTER TABLE media ADD COLUMN quarantined_by TEXT NULL;
            ALTER TABLE media ADD COLUMN safe_from_quarantine BIGINT NOT NULL DEFAULT 0;
            """),
        // A user's own request rate limit set by an admin (Synapse's override_ratelimit); zero for both means none.
        (20, """
            ALTER TABLE users ADD COLUMN ratelimit_per_second BIGINT NULL;
            ALTER TABLE users ADD COLUMN ratelimit_burst BIGINT NULL;
            """),
        // Tokens an admin took to act as a user (Synapse's login as a user): no device of the user's, gone when the admin logs out everywhere.
        (21, """
            ALTER TABLE access_tokens ADD COLUMN puppeted_by TEXT NULL;
            CREATE INDEX access_tokens_puppeted_by ON access_tokens (puppeted_by);
            """),
        // Shadow-banned users (Synapse's): what they send to others seems to succeed and reaches nobody.
        (22, """
            ALTER TABLE users ADD COLUMN shadow_banned BIGINT NOT NULL DEFAULT 0;
            """),
        // Sign-ins under way at an upstream OpenID Connect provider, keyed by a hash of their state parameter.
        (23, """
            CREATE TABLE sso_sessions (
                state_hash TEXT PRIMARY KEY,
                idp_id TEXT NOT NULL,
                nonce TEXT NOT NULL,
                code_verifier TEXT NULL,
                client_redirect_url TEXT NULL,
                uia_session TEXT NULL,
                return_to TEXT NULL,
                expires_ts BIGINT NOT NULL
            );
            CREATE INDEX sso_sessions_expires ON sso_sessions (expires_ts);
            """),
        // The OAuth 2.0 API: registered clients, authorisation requests (code and device grants), the sessions (devices)
        // they made, browser sign-ins, the ID token signing key, cross-signing resets approved in the browser.
        (24, """
            CREATE TABLE oauth_clients (
                client_id TEXT PRIMARY KEY,
                metadata_json TEXT NOT NULL,
                created_ts BIGINT NOT NULL
            );
            CREATE TABLE oauth_grants (
                grant_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                client_id TEXT NOT NULL,
                scope TEXT NOT NULL,
                device_id TEXT NOT NULL,
                redirect_uri TEXT NULL,
                response_mode TEXT NULL,
                state TEXT NULL,
                nonce TEXT NULL,
                code_challenge TEXT NULL,
                code_hash TEXT NULL UNIQUE,
                user_code TEXT NULL UNIQUE,
                status TEXT NOT NULL,
                user_id TEXT NULL,
                auth_time BIGINT NULL,
                created_ts BIGINT NOT NULL,
                expires_ts BIGINT NOT NULL,
                last_poll_ts BIGINT NULL
            );
            CREATE INDEX oauth_grants_expires ON oauth_grants (expires_ts);
            CREATE TABLE oauth_sessions (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                client_id TEXT NOT NULL,
                scope TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                PRIMARY KEY (user_id, device_id)
            );
            CREATE TABLE oauth_browser_sessions (
                session_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                auth_time BIGINT NOT NULL,
                expires_ts BIGINT NOT NULL
            );
            CREATE INDEX oauth_browser_sessions_user ON oauth_browser_sessions (user_id);
            CREATE INDEX oauth_browser_sessions_expires ON oauth_browser_sessions (expires_ts);
            CREATE TABLE oauth_signing_keys (
                key_id TEXT PRIMARY KEY,
                pkcs8 TEXT NOT NULL,
                created_ts BIGINT NOT NULL
            );
            CREATE TABLE oauth_cross_signing_resets (
                user_id TEXT PRIMARY KEY,
                approved_until_ts BIGINT NOT NULL
            );
            """),
        // The notary's cache keeps each key's latest response: a later response without a key no longer loses it.
        (25, """
            DROP TABLE server_key_responses;
            CREATE TABLE server_key_responses (
                server_name TEXT NOT NULL,
                key_id TEXT NOT NULL,
                response_json TEXT NOT NULL,
                valid_until_ts BIGINT NOT NULL,
                fetched_ts BIGINT NOT NULL,
                PRIMARY KEY (server_name, key_id)
            );
            """),
        // Where each stream's readers stand on the main process, recorded for its workers (README "Scaling out").
        (26, """
            CREATE TABLE replication_positions (
                stream TEXT PRIMARY KEY,
                position BIGINT NOT NULL
            );
            """),
        // Notifying events keyed by user and stream position (was user and event ID): each insert lands at the end of
        // its user's range instead of a random place, and the (user_id, stream_ordering) index it made redundant goes.
        (27, """
            CREATE TABLE event_push_actions_new (
                user_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                stream_ordering BIGINT NOT NULL,
                thread_id TEXT NOT NULL,
                highlight BIGINT NOT NULL,
                actions TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (user_id, stream_ordering)
            );
            INSERT INTO event_push_actions_new (user_id, event_id, room_id, stream_ordering, thread_id, highlight, actions, ts)
            SELECT user_id, event_id, room_id, stream_ordering, thread_id, highlight, actions, ts FROM event_push_actions WHERE true
            ON CONFLICT DO NOTHING;
            DROP TABLE event_push_actions;
            ALTER TABLE event_push_actions_new RENAME TO event_push_actions;
            CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);
            """),
        // Several event writers (README "Scaling out") take event positions from a sequence (PostgreSQL only, below).
        (28, "SELECT 1"),
        // Other servers' EDUs received by an event writer, for the main process to apply (ServerServer/InboundEduQueue.cs).
        (29, """
            CREATE TABLE federation_inbound_edus (
                id BIGINT PRIMARY KEY,
                origin TEXT NOT NULL,
                edu_json TEXT NOT NULL,
                received_ts BIGINT NOT NULL
            );
            INSERT INTO stream_positions (stream, position) VALUES ('federation_inbound_edus', 0);
            """),
        // Each notifying event put a row of each recipient into two per-user indexes, each row on its own page: on
        // SQLite two thirds of the pages a send's commit wrote. A recount after a read receipt scans the user's
        // notifying events after that receipt through the primary key instead, keeping this room's.
        (30, "DROP INDEX event_push_actions_room"),
    ];

    /// <summary>
    /// The statements that differ between the engines, run after the portable part of their version: full-text search
    /// is a tsvector column with a GIN index on PostgreSQL and an FTS5 table on SQLite.
    /// </summary>
    private static readonly Dictionary<(int Version, DatabaseEngine Engine), string> EngineSpecific = new()
    {
        [(7, DatabaseEngine.Postgres)] = """
            CREATE TABLE event_search (
                event_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                key TEXT NOT NULL,
                stream_ordering BIGINT NOT NULL,
                body TEXT NOT NULL,
                vector tsvector NOT NULL
            );
            CREATE INDEX event_search_vector ON event_search USING GIN (vector);
            CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
            """,
        [(28, DatabaseEngine.Postgres)] = "CREATE SEQUENCE events_seq",
        [(7, DatabaseEngine.Sqlite)] = """
            CREATE VIRTUAL TABLE event_search USING fts5(
                body, event_id UNINDEXED, room_id UNINDEXED, sender UNINDEXED, key UNINDEXED, stream_ordering UNINDEXED,
                tokenize = 'porter unicode61');
            """,
    };

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
                if (EngineSpecific.TryGetValue((version, database.Engine), out var specific))
                    await session.ExecuteAsync(specific);
                await session.ExecuteAsync("INSERT INTO schema_version (version) VALUES (@version)", new { version = (long)version });
                logger.LogInformation("Applied database migration {Version}", version);
            }
        }, ct);
    }
}
