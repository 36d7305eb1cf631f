using System.Globalization;
using System.Net;
using System.Reflection;
using Matrix.Federation.Crypto;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Rooms;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Matrix.Homeserver.Config;

/// <summary>Thrown for an invalid configuration; the message names the offending key.</summary>
public sealed class ConfigException(string message) : Exception(message);

public static class ConfigLoader
{
    public const string SampleResourceName = "config.sample.yaml";

    /// <summary>The configuration used when the server runs without arguments: a one-person trial server on loopback.</summary>
    public static HomeserverConfig TrialDefaults()
    {
        var config = new HomeserverConfig();
        config.Registration.Enabled = true;
        Validate(config);
        return config;
    }

    public static HomeserverConfig LoadFile(string path)
    {
        if (!File.Exists(path))
            throw new ConfigException($"config file '{path}' does not exist");
        var config = Parse(File.ReadAllText(path));
        // Relative paths in a config file are relative to the file, so the server can be started from anywhere.
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        config.DataDir = Path.GetFullPath(config.DataDir, baseDir);
        if (config.SigningKeyPath is not null) config.SigningKeyPath = Path.GetFullPath(config.SigningKeyPath, baseDir);
        if (config.MediaStorePath is not null) config.MediaStorePath = Path.GetFullPath(config.MediaStorePath, baseDir);
        if (config.Database.SqlitePath is not null) config.Database.SqlitePath = Path.GetFullPath(config.Database.SqlitePath, baseDir);
        if (config.Federation.TrustedCaFile is not null) config.Federation.TrustedCaFile = Path.GetFullPath(config.Federation.TrustedCaFile, baseDir);
        if (config.Ldap.TlsCaFile is not null) config.Ldap.TlsCaFile = Path.GetFullPath(config.Ldap.TlsCaFile, baseDir);
        if (config.Email.TemplateDir is not null) config.Email.TemplateDir = Path.GetFullPath(config.Email.TemplateDir, baseDir);
        foreach (var listener in config.Listeners)
        {
            if (listener.TlsCertificatePath is not null) listener.TlsCertificatePath = Path.GetFullPath(listener.TlsCertificatePath, baseDir);
            if (listener.TlsPrivateKeyPath is not null) listener.TlsPrivateKeyPath = Path.GetFullPath(listener.TlsPrivateKeyPath, baseDir);
        }
        config.AppServiceConfigFiles = config.AppServiceConfigFiles.Select(file => Path.GetFullPath(file, baseDir)).ToList();
        OidcProviderValidation.LoadKeyFiles(config.OidcProviders, baseDir);
        try
        {
            AppServices.Registration.RegistrationFile.ValidateSet(
                config.AppServiceConfigFiles.Select(file => AppServices.Registration.RegistrationFile.Load(file, config.ServerName)).ToList());
        }
        catch (AppServices.Registration.RegistrationException e)
        {
            throw new ConfigException($"config key 'app_service_config_files': {e.Message}");
        }
        if (config.Federation.TrustedCaFile is { } ca && !File.Exists(ca))
            throw new ConfigException($"config key 'federation.trusted_ca_file': file '{ca}' does not exist");
        if (config.Ldap.TlsCaFile is { } ldapCa && !File.Exists(ldapCa))
            throw new ConfigException($"config key 'ldap.tls_ca_file': file '{ldapCa}' does not exist");
        if (config.Email.TemplateDir is { } templates && !Directory.Exists(templates))
            throw new ConfigException($"config key 'email.template_dir': folder '{templates}' does not exist");
        return config;
    }

    public static HomeserverConfig Parse(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ConfigException($"config is not valid YAML (line {e.Start.Line}): {e.Message}");
        }
        if (stream.Documents.Count > 0 && stream.Documents[0].RootNode is not YamlScalarNode { Value: null or "" })
            CheckShape(stream.Documents[0].RootNode, typeof(HomeserverConfig), "");

        var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        HomeserverConfig? config;
        try
        {
            config = deserializer.Deserialize<HomeserverConfig?>(yaml);
        }
        catch (YamlException e)
        {
            throw new ConfigException($"config error at line {e.Start.Line}: {e.InnerException?.Message ?? e.Message}");
        }
        config ??= new HomeserverConfig();
        Validate(config);
        return config;
    }

    public static string SampleText()
    {
        using var stream = typeof(ConfigLoader).Assembly.GetManifestResourceStream(SampleResourceName)
            ?? throw new InvalidOperationException("the sample config is not embedded");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>Checks every key and scalar against the config classes, so an error names the full key path.</summary>
    private static void CheckShape(YamlNode node, Type type, string path)
    {
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            if (node is YamlScalarNode { Value: null or "" or "~" or "null" })
                return;
            type = underlying;
        }
        var where = path.Length == 0 ? "the top level" : $"'{path}'";
        if (type == typeof(string))
        {
            if (node is not YamlScalarNode)
                throw new ConfigException($"config key {where} must be a string");
            return;
        }
        if (type == typeof(int) || type == typeof(long) || type == typeof(double) || type == typeof(bool))
        {
            var value = (node as YamlScalarNode)?.Value;
            var ok = value is not null && (type == typeof(bool)
                ? value is "true" or "false" or "True" or "False"
                : type == typeof(double)
                    ? double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
                    : long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number)
                      && (type == typeof(long) || number is >= int.MinValue and <= int.MaxValue));
            if (!ok)
                throw new ConfigException($"config key {where} must be {(type == typeof(bool) ? "true or false" : "a number")}, not '{value}'");
            return;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            if (node is not YamlMappingNode entries)
                throw new ConfigException($"config key {where} must be a mapping");
            foreach (var (keyNode, valueNode) in entries)
                CheckShape(valueNode, type.GetGenericArguments()[1], $"{path}.{((YamlScalarNode)keyNode).Value}");
            return;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            if (node is not YamlSequenceNode sequence)
                throw new ConfigException($"config key {where} must be a list");
            var index = 0;
            foreach (var item in sequence)
                CheckShape(item, type.GetGenericArguments()[0], $"{path}[{index++}]");
            return;
        }
        if (node is not YamlMappingNode mapping)
            throw new ConfigException($"config key {where} must be a mapping");
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .ToDictionary(p => UnderscoredNamingConvention.Instance.Apply(p.Name));
        foreach (var (keyNode, valueNode) in mapping)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            var keyPath = path.Length == 0 ? key : $"{path}.{key}";
            if (!properties.TryGetValue(key, out var property))
                throw new ConfigException($"unknown config key '{keyPath}' (line {keyNode.Start.Line})");
            CheckShape(valueNode, property.PropertyType, keyPath);
        }
    }

    private static bool IsEd25519PublicKey(string keyId, string key) =>
        keyId.StartsWith("ed25519:", StringComparison.Ordinal) && UnpaddedBase64.TryDecode(key, out var bytes) && bytes.Length == 32;

    public static void Validate(HomeserverConfig config)
    {
        if (!ServerName.TryParse(config.ServerName, out _))
            throw new ConfigException($"config key 'server_name': '{config.ServerName}' is not a valid server name");
        if (config.PublicBaseurl is not null
            && (!Uri.TryCreate(config.PublicBaseurl, UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https")))
            throw new ConfigException("config key 'public_baseurl' must be an absolute http(s) URL");
        foreach (var (keyId, old) in config.OldSigningKeys)
            if (!IsEd25519PublicKey(keyId, old.Key) || old.ExpiredTs <= 0)
                throw new ConfigException($"config key 'old_signing_keys.{keyId}' must name an ed25519 key with its 32-byte public key (unpadded base64) and expired_ts");
        for (var i = 0; i < config.Federation.TrustedKeyServers.Count; i++)
        {
            var notary = config.Federation.TrustedKeyServers[i];
            if (!ServerName.TryParse(notary.ServerName, out _))
                throw new ConfigException($"config key 'federation.trusted_key_servers[{i}].server_name': '{notary.ServerName}' is not a valid server name");
            foreach (var (keyId, key) in notary.VerifyKeys ?? [])
                if (!IsEd25519PublicKey(keyId, key))
                    throw new ConfigException($"config key 'federation.trusted_key_servers[{i}].verify_keys': '{keyId}' must name an ed25519 key as 32 bytes of unpadded base64");
        }
        if (RoomVersions.Find(config.DefaultRoomVersion) is null)
            throw new ConfigException($"config key 'default_room_version': '{config.DefaultRoomVersion}' is not a room version this server supports");
        if (string.IsNullOrWhiteSpace(config.DataDir))
            throw new ConfigException("config key 'data_dir' must not be empty");
        if (config.Listeners.Count == 0)
            throw new ConfigException("config key 'listeners' must name at least one listener");
        for (var i = 0; i < config.Listeners.Count; i++)
        {
            var listener = config.Listeners[i];
            if (!IPAddress.TryParse(listener.BindAddress, out _))
                throw new ConfigException($"config key 'listeners[{i}].bind_address': '{listener.BindAddress}' is not an IP address");
            if (listener.Port is < 0 or > 65535)
                throw new ConfigException($"config key 'listeners[{i}].port' must be between 0 and 65535");
            if ((listener.TlsCertificatePath is null) != (listener.TlsPrivateKeyPath is null))
                throw new ConfigException($"config keys 'listeners[{i}].tls_certificate_path' and 'tls_private_key_path' go together");
            if (listener.Resources.Count == 0 || listener.Resources.Any(r => r is not ("client" or "federation" or "metrics")))
                throw new ConfigException($"config key 'listeners[{i}].resources' must list client, federation and/or metrics");
        }
        switch (config.Database.Engine)
        {
            case "sqlite":
                break;
            case "postgres":
                if (string.IsNullOrWhiteSpace(config.Database.ConnectionString))
                    throw new ConfigException("config key 'database.connection_string' is required when 'database.engine' is postgres");
                break;
            default:
                throw new ConfigException($"config key 'database.engine' must be 'sqlite' or 'postgres', not '{config.Database.Engine}'");
        }
        if (config.Database.MaxPoolSize < 1)
            throw new ConfigException("config key 'database.max_pool_size' must be at least 1");
        if (config.RegistrationSharedSecret is { } synapseSecret)
        {
            if (config.Registration.SharedSecret is { } secret && secret != synapseSecret)
                throw new ConfigException("config keys 'registration_shared_secret' and 'registration.shared_secret' differ: set one of them");
            config.Registration.SharedSecret = synapseSecret;
        }
        if (config.ServerNotices.SystemMxidLocalpart is { } noticesLocalpart && !UserId.TryParse($"@{noticesLocalpart}:{config.ServerName}", out _))
            throw new ConfigException("config key 'server_notices.system_mxid_localpart' is not a valid user ID localpart");
        if (config.Registration.SharedSecret is { Length: < 16 })
            throw new ConfigException("config key 'registration.shared_secret' must be at least 16 characters");
        var hashing = config.Auth.PasswordHashing;
        if (hashing.OpsLimit < 1)
            throw new ConfigException("config key 'auth.password_hashing.ops_limit' must be at least 1");
        if (hashing.MemLimitKib < 8)
            throw new ConfigException("config key 'auth.password_hashing.mem_limit_kib' must be at least 8");
        RequirePositive(config.Auth.RefreshableAccessTokenLifetimeMs, "auth.refreshable_access_token_lifetime_ms");
        if (config.Auth.RefreshTokenLifetimeMs is { } refreshLifetime)
            RequirePositive(refreshLifetime, "auth.refresh_token_lifetime_ms");
        RequirePositive(config.Auth.LoginTokenLifetimeMs, "auth.login_token_lifetime_ms");
        RequirePositive(config.Auth.UiaSessionLifetimeMs, "auth.uia_session_lifetime_ms");
        RequirePositive(config.Limits.MaxJsonBodyBytes, "limits.max_json_body_bytes");
        if (config.Caches.ExpireAfterMs is { } expireAfter)
            RequirePositive(expireAfter, "caches.expire_after_ms");
        RequirePositive(config.Caches.Events, "caches.events");
        RequirePositive(config.Caches.ParsedEvents, "caches.parsed_events");
        RequirePositive(config.Caches.StateGroups, "caches.state_groups");
        RequirePositive(config.Caches.AccessTokens, "caches.access_tokens");
        RequirePositive(config.Caches.SyncFilters, "caches.sync_filters");
        RequirePositive(config.Caches.DeviceKeyCounts, "caches.device_key_counts");
        RequirePositive(config.Caches.Memberships, "caches.memberships");
        RequirePositive(config.Caches.UnreadCounts, "caches.unread_counts");
        RequirePositive(config.Caches.PresenceChanges, "caches.presence_changes");
        RequirePositive(config.Caches.StateEventRows, "caches.state_event_rows");
        ValidateRate(config.RateLimits.Login, "rate_limits.login");
        ValidateRate(config.RateLimits.Registration, "rate_limits.registration");
        ValidateRate(config.RateLimits.ClientRequests, "rate_limits.client_requests");
        ValidateWorker(config);
        if (config.Presence.IdleAfterMs <= 0)
            throw new ConfigException("config key 'presence.idle_after_ms' must be positive");
        if (config.WellKnown.ClientBaseUrl is not null && !Uri.TryCreate(config.WellKnown.ClientBaseUrl, UriKind.Absolute, out _))
            throw new ConfigException("config key 'well_known.client_base_url' must be an absolute URL");
        if (config.WellKnown.IdentityServerBaseUrl is not null && !Uri.TryCreate(config.WellKnown.IdentityServerBaseUrl, UriKind.Absolute, out _))
            throw new ConfigException("config key 'well_known.identity_server_base_url' must be an absolute URL");
        if (config.WellKnown.Server is not null && !ServerName.TryParse(config.WellKnown.Server, out _))
            throw new ConfigException("config key 'well_known.server' must be a server name with an optional port");
        ValidateLdap(config.Ldap);
        OidcProviderValidation.Validate(config.OidcProviders);
        ValidateOAuth(config.Oauth);
        ValidateEmail(config.Email);
        ValidateRecaptcha(config.Registration.Recaptcha);
        if (config.IdentityServers.TimeoutMs < 1)
            throw new ConfigException("config key 'identity_servers.timeout_ms' must be greater than 0");
        ValidateMedia(config.Media);
        foreach (var (contact, i) in config.WellKnown.SupportContacts.Select((c, i) => (c, i)))
            if (contact.MatrixId is null && contact.EmailAddress is null)
                throw new ConfigException($"config key 'well_known.support_contacts[{i}]' needs a matrix_id or an email_address");
        if (config.Voip.TurnUris.Any(u => !u.StartsWith("turn:", StringComparison.Ordinal) && !u.StartsWith("turns:", StringComparison.Ordinal)))
            throw new ConfigException("config key 'voip.turn_uris' must list turn: or turns: URIs");
        if (config.Voip.TurnUris.Count > 0 && config.Voip.TurnSharedSecret is null && (config.Voip.TurnUsername is null || config.Voip.TurnPassword is null))
            throw new ConfigException("config key 'voip.turn_uris' needs 'voip.turn_shared_secret', or 'voip.turn_username' and 'voip.turn_password'");
        RequirePositive(config.Voip.TurnUserLifetimeMs, "voip.turn_user_lifetime_ms");
        foreach (var (list, key) in new[] { (config.OutboundHttp.IpRangeDenylist, "ip_range_denylist"), (config.OutboundHttp.IpRangeAllowlist, "ip_range_allowlist") })
            foreach (var range in list)
                if (!IPNetwork.TryParse(range, out _))
                    throw new ConfigException($"config key 'outbound_http.{key}': '{range}' is not an address range in CIDR notation");
        if (!Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(config.Logging.Level, ignoreCase: true, out _))
            throw new ConfigException($"config key 'logging.level': '{config.Logging.Level}' is not one of Trace, Debug, Information, Warning, Error, Critical");
        if (config.Logging.Format is not ("text" or "json"))
            throw new ConfigException($"config key 'logging.format': '{config.Logging.Format}' is not text or json");
    }

    private static void ValidateMedia(MediaConfig media)
    {
        if (media.Storage is not ("local" or "s3"))
            throw new ConfigException($"config key 'media.storage' must be 'local' or 's3', not '{media.Storage}'");
        if (media.Storage == "s3" && string.IsNullOrWhiteSpace(media.S3.Bucket))
            throw new ConfigException("config key 'media.s3.bucket' is required when 'media.storage' is s3");
        if (media.S3.Endpoint is not null && !Uri.TryCreate(media.S3.Endpoint, UriKind.Absolute, out _))
            throw new ConfigException("config key 'media.s3.endpoint' must be an absolute URL");
        if ((media.S3.AccessKeyId is null) != (media.S3.SecretAccessKey is null))
            throw new ConfigException("config keys 'media.s3.access_key_id' and 'media.s3.secret_access_key' go together");
        RequirePositive(media.MaxUploadBytes, "media.max_upload_bytes");
        RequirePositive(media.MaxRemoteBytes, "media.max_remote_bytes");
        RequirePositive(media.UnusedExpiresAfterMs, "media.unused_expires_after_ms");
        if (media.QuotaBytesPerUser is { } quota)
            RequirePositive(quota, "media.quota_bytes_per_user");
        if (media.MaxPendingUploadsPerUser < 1)
            throw new ConfigException("config key 'media.max_pending_uploads_per_user' must be at least 1");
        RequirePositive(media.Thumbnails.MaxSourcePixels, "media.thumbnails.max_source_pixels");
        for (var i = 0; i < media.Thumbnails.Sizes.Count; i++)
        {
            var size = media.Thumbnails.Sizes[i];
            if (size.Width < 1 || size.Height < 1 || size.Method is not ("crop" or "scale"))
                throw new ConfigException($"config key 'media.thumbnails.sizes[{i}]' needs a positive width and height and method crop or scale");
        }
        var preview = media.UrlPreview;
        RequirePositive(preview.MaxPageBytes, "media.url_preview.max_page_bytes");
        RequirePositive(preview.TimeoutMs, "media.url_preview.timeout_ms");
        RequirePositive(preview.CacheMs, "media.url_preview.cache_ms");
    }

    private static void ValidateRecaptcha(RecaptchaConfig recaptcha)
    {
        if (recaptcha.Required && !recaptcha.Enabled)
            throw new ConfigException("config key 'registration.recaptcha.required' needs 'registration.recaptcha.private_key'");
        if (recaptcha.Enabled && string.IsNullOrEmpty(recaptcha.PublicKey))
            throw new ConfigException("config key 'registration.recaptcha.public_key' is required with 'registration.recaptcha.private_key'");
        if (!Uri.TryCreate(recaptcha.SiteverifyApi, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            throw new ConfigException("config key 'registration.recaptcha.siteverify_api' must be an absolute http(s) URL");
    }

    private static void ValidateEmail(EmailConfig email)
    {
        if (!email.Enabled)
            return;
        if (string.IsNullOrWhiteSpace(email.SmtpHost) || Uri.CheckHostName(email.SmtpHost) == UriHostNameType.Unknown)
            throw new ConfigException($"config key 'email.smtp_host': '{email.SmtpHost}' is not a host name or address");
        if (email.SmtpPort is < 1 or > 65535)
            throw new ConfigException("config key 'email.smtp_port' must be between 1 and 65535");
        if ((email.SmtpUser is null) != (email.SmtpPass is null))
            throw new ConfigException("config keys 'email.smtp_user' and 'email.smtp_pass' go together");
        if (email.RequireTransportSecurity && !email.EnableTls && !email.ForceTls)
            throw new ConfigException("config key 'email.require_transport_security' needs 'email.enable_tls' or 'email.force_tls'");
        if (!Email.MailAddresses.TryParseFrom(email.NotifFrom.Replace("%(app)s", email.AppName), out _))
            throw new ConfigException("config key 'email.notif_from' must be an email address, optionally with a display name (\"Name <address>\")");
        if (email.ClientBaseUrl is not null
            && (!Uri.TryCreate(email.ClientBaseUrl, UriKind.Absolute, out var client) || client.Scheme is not ("http" or "https")))
            throw new ConfigException("config key 'email.client_base_url' must be an absolute http(s) URL");
        RequirePositive(email.ValidationTokenLifetimeMs, "email.validation_token_lifetime_ms");
        RequirePositive(email.TimeoutMs, "email.timeout_ms");
    }

    private static void ValidateWorker(HomeserverConfig config)
    {
        var worker = config.Worker;
        if (string.IsNullOrWhiteSpace(worker.InstanceName))
            throw new ConfigException("config key 'worker.instance_name' must not be empty");
        if (worker.Role is not (WorkerConfig.MainRole or WorkerConfig.SyncRole or WorkerConfig.MediaRole or WorkerConfig.FederationReaderRole
            or WorkerConfig.FederationSenderRole or WorkerConfig.PusherRole or WorkerConfig.AppServiceSenderRole or WorkerConfig.BackgroundRole
            or WorkerConfig.EventWriterRole))
            throw new ConfigException("config key 'worker.role' must be 'main', 'sync', 'media', 'federation_reader', 'federation_sender', 'pusher', "
                + $"'app_service_sender', 'background' or 'event_writer', not '{worker.Role}'");
        if (worker.Role == WorkerConfig.BackgroundRole && worker.BackgroundTasksInstance != worker.InstanceName)
            throw new ConfigException("config key 'worker.background_tasks_instance' must name this background worker's instance_name");
        if (!string.IsNullOrEmpty(worker.BackgroundTasksInstance) && !worker.Replicates)
            throw new ConfigException("config key 'worker.redis' is required with 'worker.background_tasks_instance'");
        foreach (var (instances, key, role) in new[]
        {
            (worker.FederationSenderInstances, "federation_sender_instances", WorkerConfig.FederationSenderRole),
            (worker.PusherInstances, "pusher_instances", WorkerConfig.PusherRole),
            (worker.AppServiceSenderInstances, "app_service_sender_instances", WorkerConfig.AppServiceSenderRole),
            (worker.EventWriterInstances, "event_writer_instances", WorkerConfig.EventWriterRole),
        })
        {
            if (instances.Count != instances.Distinct().Count())
                throw new ConfigException($"config key 'worker.{key}' names an instance twice");
            if (worker.Role == role && !instances.Contains(worker.InstanceName))
                throw new ConfigException($"config key 'worker.{key}' must name this {role}'s instance_name");
            if (instances.Count > 0 && !worker.Replicates)
                throw new ConfigException($"config key 'worker.redis' is required with 'worker.{key}'");
        }
        if (worker.EventWriterInstances.Contains("main"))
            throw new ConfigException("config key 'worker.event_writer_instances' names the event writer workers; 'main' is the main process's name there");
        if (worker.SharesEvents && config.Database.Engine != "postgres")
            throw new ConfigException("config key 'worker.event_writer_instances' needs 'database.engine: postgres' (the writers share a sequence)");
        if (string.IsNullOrWhiteSpace(worker.RedisChannelPrefix))
            throw new ConfigException("config key 'worker.redis_channel_prefix' must not be empty");
        if (worker.Replicates)
        {
            try
            {
                StackExchange.Redis.ConfigurationOptions.Parse(worker.Redis!);
            }
            catch (ArgumentException e)
            {
                throw new ConfigException($"config key 'worker.redis' is not a Redis configuration string: {e.Message}");
            }
        }
        if (worker.IsMain)
            return;
        // A worker shares the main process's database and hears of its writes over Redis.
        if (config.Database.Engine != "postgres")
            throw new ConfigException("config key 'worker.role': a worker needs 'database.engine: postgres' (shared with the main process)");
        if (!worker.Replicates)
            throw new ConfigException("config key 'worker.redis' is required when 'worker.role' is not main");
        var servesFederation = config.Listeners.Any(l => l.Resources.Contains("federation"));
        if (worker.Role == WorkerConfig.FederationReaderRole && !servesFederation)
            throw new ConfigException("config key 'listeners': a federation_reader needs a listener with the federation resource");
        if (worker.Role is not (WorkerConfig.FederationReaderRole or WorkerConfig.EventWriterRole) && servesFederation)
            throw new ConfigException(
                "config key 'listeners': only a federation_reader or an event_writer worker serves the federation resource (else the main process does)");
    }

    private static void ValidateLdap(LdapConfig ldap)
    {
        if (!ldap.Enabled)
            return;
        if (!Uri.TryCreate(ldap.Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("ldap" or "ldaps"))
            throw new ConfigException("config key 'ldap.uri' must be an ldap:// or ldaps:// URL");
        if (ldap.StartTls && uri.Scheme == "ldaps")
            throw new ConfigException("config key 'ldap.start_tls' is for ldap:// URLs; ldaps:// is TLS already");
        if (ldap.BindDn is null && ldap.BindDnTemplate is null)
            throw new ConfigException("config key 'ldap.bind_dn' (search, then bind) or 'ldap.bind_dn_template' (direct bind) is required");
        if (ldap.BindDn is not null && ldap.BindPassword is null)
            throw new ConfigException("config key 'ldap.bind_password' is required with 'ldap.bind_dn'");
        if (ldap.BindDnTemplate is not null && !ldap.BindDnTemplate.Contains("{username}"))
            throw new ConfigException("config key 'ldap.bind_dn_template' must contain {username}");
        if (string.IsNullOrWhiteSpace(ldap.BaseDn))
            throw new ConfigException("config key 'ldap.base_dn' is required");
        if (!ldap.UserFilter.Contains("{username}"))
            throw new ConfigException("config key 'ldap.user_filter' must contain {username}");
        RequirePositive(ldap.TimeoutMs, "ldap.timeout_ms");
    }

    private static void ValidateOAuth(OAuthConfig oauth)
    {
        RequirePositive(oauth.AuthorizationCodeLifetimeMs, "oauth.authorization_code_lifetime_ms");
        RequirePositive(oauth.DeviceCodeLifetimeMs, "oauth.device_code_lifetime_ms");
        RequirePositive(oauth.DeviceCodePollIntervalSeconds, "oauth.device_code_poll_interval_seconds");
        RequirePositive(oauth.BrowserSessionLifetimeMs, "oauth.browser_session_lifetime_ms");
        RequirePositive(oauth.CrossSigningResetLifetimeMs, "oauth.cross_signing_reset_lifetime_ms");
    }

    private static void RequirePositive(long value, string key)
    {
        if (value <= 0)
            throw new ConfigException($"config key '{key}' must be greater than 0");
    }

    private static void ValidateRate(RateLimitConfig rate, string key)
    {
        if (rate.PerSecond <= 0)
            throw new ConfigException($"config key '{key}.per_second' must be greater than 0");
        if (rate.Burst < 1)
            throw new ConfigException($"config key '{key}.burst' must be at least 1");
    }
}
