using Matrix.Federation.Rooms;

namespace Matrix.Homeserver.Config;

// Property names map to snake_case YAML keys; defaults here are the documented defaults of config.sample.yaml.

public sealed class HomeserverConfig
{
    public string ServerName { get; set; } = "localhost";
    public string? PublicBaseurl { get; set; }
    public string DataDir { get; set; } = "./data";
    public string? SigningKeyPath { get; set; }
    public Dictionary<string, OldSigningKeyConfig> OldSigningKeys { get; set; } = [];
    public string? MediaStorePath { get; set; }
    public string DefaultRoomVersion { get; set; } = RoomVersions.Default.Id;
    public List<ListenerConfig> Listeners { get; set; } = [new()];
    public DatabaseConfig Database { get; set; } = new();
    public RegistrationConfig Registration { get; set; } = new();
    /// <summary>Synapse's top-level name for <c>registration.shared_secret</c> (what <c>register_new_matrix_user -c</c> reads).</summary>
    public string? RegistrationSharedSecret { get; set; }
    public AuthConfig Auth { get; set; } = new();
    public LimitsConfig Limits { get; set; } = new();
    public CachesConfig Caches { get; set; } = new();
    public RateLimitsConfig RateLimits { get; set; } = new();
    public WellKnownConfig WellKnown { get; set; } = new();
    public PresenceConfig Presence { get; set; } = new();
    /// <summary>This process's part in a deployment of several (README "Scaling out"); one process needs none of it.</summary>
    public WorkerConfig Worker { get; set; } = new();
    public UserDirectoryConfig UserDirectory { get; set; } = new();
    public FederationConfig Federation { get; set; } = new();
    public LoggingConfig Logging { get; set; } = new();
    public LdapConfig Ldap { get; set; } = new();
    public MediaConfig Media { get; set; } = new();
    public OutboundHttpConfig OutboundHttp { get; set; } = new();
    public VoipConfig Voip { get; set; } = new();
    public EmailConfig Email { get; set; } = new();
    public IdentityServersConfig IdentityServers { get; set; } = new();
    public ServerNoticesConfig ServerNotices { get; set; } = new();
    /// <summary>Upstream OpenID Connect providers for single sign-on (Synapse's <c>oidc_providers</c>).</summary>
    public List<OidcProviderConfig> OidcProviders { get; set; } = [];
    public OAuthConfig Oauth { get; set; } = new();
    public PasswordConfig PasswordConfig { get; set; } = new();
    public List<string> AppServiceConfigFiles { get; set; } = [];
    public bool AppServiceLegacyAuthorization { get; set; }

    public string EffectiveSigningKeyPath => SigningKeyPath ?? Path.Combine(DataDir, "signing.key");
    /// <summary>The version of rooms created without one (checked at start-up to be a known version).</summary>
    public RoomVersion EffectiveDefaultRoomVersion => RoomVersions.Find(DefaultRoomVersion)!;
    public string EffectiveMediaStorePath => MediaStorePath ?? Path.Combine(DataDir, "media");
    public string EffectivePublicBaseurl => (PublicBaseurl ?? $"http://{ServerName}{(ServerName.Contains(':') ? "" : ":" + Listeners[0].Port)}/").TrimEnd('/') + "/";
}

/// <summary>A key this server no longer signs with: its public half and when it stopped being used.</summary>
public sealed class OldSigningKeyConfig
{
    public string Key { get; set; } = "";
    public long ExpiredTs { get; set; }
}

public sealed class ListenerConfig
{
    public string BindAddress { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 8008;
    public string? TlsCertificatePath { get; set; }
    public string? TlsPrivateKeyPath { get; set; }
    public List<string> Resources { get; set; } = ["client", "federation"];
    /// <summary>Behind a reverse proxy: the client's address is the last one the proxy appended to <c>X-Forwarded-For</c>.</summary>
    public bool XForwarded { get; set; }
}

public sealed class DatabaseConfig
{
    public string Engine { get; set; } = "sqlite";
    public string? SqlitePath { get; set; }
    public string? ConnectionString { get; set; }
    public int MaxPoolSize { get; set; } = 20;
}

public sealed class RegistrationConfig
{
    public bool Enabled { get; set; }
    public bool RequiresToken { get; set; }
    public string? SharedSecret { get; set; }
    /// <summary>Guest accounts (<c>POST /register?kind=guest</c>), Synapse's <c>allow_guest_access</c>; off by default as there.</summary>
    public bool AllowGuestAccess { get; set; }
    public RecaptchaConfig Recaptcha { get; set; } = new();
}

/// <summary>
/// reCAPTCHA at registration (Synapse's <c>recaptcha_public_key</c>, <c>recaptcha_private_key</c>,
/// <c>recaptcha_siteverify_api</c> and <c>enable_registration_captcha</c>): on when <see cref="PrivateKey"/> is set.
/// </summary>
public sealed class RecaptchaConfig
{
    /// <summary>The site key, given to clients in the stage's <c>params</c> to show the challenge.</summary>
    public string? PublicKey { get; set; }
    /// <summary>The secret sent with each response to <see cref="SiteverifyApi"/>.</summary>
    public string? PrivateKey { get; set; }
    public string SiteverifyApi { get; set; } = "https://www.recaptcha.net/recaptcha/api/siteverify";
    /// <summary>Every registration flow starts with <c>m.login.recaptcha</c>.</summary>
    public bool Required { get; set; }

    public bool Enabled => !string.IsNullOrEmpty(PrivateKey);
}

public sealed class AuthConfig
{
    public PasswordHashingConfig PasswordHashing { get; set; } = new();
    public long RefreshableAccessTokenLifetimeMs { get; set; } = 5 * 60 * 1000;
    public long? RefreshTokenLifetimeMs { get; set; }
    public bool LoginViaExistingSession { get; set; }
    public long LoginTokenLifetimeMs { get; set; } = 2 * 60 * 1000;
    public long UiaSessionLifetimeMs { get; set; } = 60 * 60 * 1000;
    public CasConfig Cas { get; set; } = new();
}

/// <summary>Single sign-on through a CAS server (Synapse's <c>cas_config</c>): on when <see cref="ServerUrl"/> is set.</summary>
public sealed class CasConfig
{
    /// <summary>The CAS server's base URL, e.g. https://cas.example.com/cas (its /login and /proxyValidate are used).</summary>
    public string? ServerUrl { get; set; }
    /// <summary>The name users see on the "continue with" button and pages.</summary>
    public string IdpName { get; set; } = "CAS";
    /// <summary>The CAS attribute that gives a new account its display name; none: the CAS user name.</summary>
    public string? DisplaynameAttribute { get; set; }
    /// <summary>Attributes a CAS user must have to sign in (value null: present with any value).</summary>
    public Dictionary<string, string?> RequiredAttributes { get; set; } = [];

    public bool Enabled => !string.IsNullOrEmpty(ServerUrl);
}

public sealed class PasswordHashingConfig
{
    public long OpsLimit { get; set; } = 2;
    public long MemLimitKib { get; set; } = 64 * 1024;
}

public sealed class LimitsConfig
{
    public long MaxJsonBodyBytes { get; set; } = 1024 * 1024;
}

/// <summary>How many entries each in-memory cache holds at most, and how long an unused entry stays.</summary>
public sealed class CachesConfig
{
    /// <summary>Entries of the event, state group, access token, membership and key count caches unused this long are dropped; null keeps them.</summary>
    public long? ExpireAfterMs { get; set; } = 30 * 60 * 1000;
    public int Events { get; set; } = 20_000;
    public int ParsedEvents { get; set; } = 1_000;
    public int StateGroups { get; set; } = 10_000;
    public int AccessTokens { get; set; } = 100_000;
    public int SyncFilters { get; set; } = 50_000;
    public int DeviceKeyCounts { get; set; } = 100_000;
    public int Memberships { get; set; } = 100_000;
    public int UnreadCounts { get; set; } = 200_000;
    public int PresenceChanges { get; set; } = 10_000;
    public int StateEventRows { get; set; } = 5_000;
}

public sealed class RateLimitsConfig
{
    public RateLimitConfig Login { get; set; } = new() { PerSecond = 0.17, Burst = 3 };
    public RateLimitConfig Registration { get; set; } = new() { PerSecond = 0.17, Burst = 3 };
    public RateLimitConfig ClientRequests { get; set; } = new() { PerSecond = 10, Burst = 50 };
}

public sealed class RateLimitConfig
{
    public double PerSecond { get; set; }
    public double Burst { get; set; }
}

public sealed class WellKnownConfig
{
    public string? ClientBaseUrl { get; set; }
    public string? IdentityServerBaseUrl { get; set; }
    public string? Server { get; set; }
    /// <summary>/.well-known/matrix/support: whom to contact, and/or a support page.</summary>
    public List<SupportContactConfig> SupportContacts { get; set; } = [];
    public string? SupportPage { get; set; }
}

public sealed class SupportContactConfig
{
    public string? MatrixId { get; set; }
    public string? EmailAddress { get; set; }
    public string Role { get; set; } = "m.role.admin";
}

/// <summary>TURN servers for VoIP calls: long-term credentials from a shared secret (coturn's REST API scheme), or fixed ones.</summary>
public sealed class VoipConfig
{
    public List<string> TurnUris { get; set; } = [];
    public string? TurnSharedSecret { get; set; }
    public string? TurnUsername { get; set; }
    public string? TurnPassword { get; set; }
    public long TurnUserLifetimeMs { get; set; } = 24 * 60 * 60 * 1000;
}

public sealed class WorkerConfig
{
    public const string MainRole = "main", SyncRole = "sync", MediaRole = "media", FederationReaderRole = "federation_reader",
        FederationSenderRole = "federation_sender", PusherRole = "pusher", AppServiceSenderRole = "app_service_sender", BackgroundRole = "background",
        EventWriterRole = "event_writer";

    public string InstanceName { get; set; } = "main";
    /// <summary>
    /// <c>main</c>: every endpoint and all background work (the one writer); <c>sync</c>: a client reader; <c>media</c>:
    /// the client media API; <c>federation_reader</c>: what other servers read; <c>background</c>: the periodic clean-ups;
    /// <c>event_writer</c>: the client sends of its share of the rooms (the load balancer routes them by room);
    /// <c>federation_sender</c>, <c>pusher</c>, <c>app_service_sender</c>: sending for their share of
    /// destinations, users or application services.
    /// </summary>
    public string Role { get; set; } = MainRole;
    /// <summary>A StackExchange.Redis configuration string; empty: no other process to tell.</summary>
    public string? Redis { get; set; }
    public string RedisChannelPrefix { get; set; } = "matrix-homeserver";
    /// <summary>The processes that send federation traffic, each for its share of the destinations; empty: the main process.</summary>
    public List<string> FederationSenderInstances { get; set; } = [];
    /// <summary>The processes that deliver push notifications, each for its share of the users; empty: the main process.</summary>
    public List<string> PusherInstances { get; set; } = [];
    /// <summary>The processes that send to application services, each for its share of them; empty: the main process.</summary>
    public List<string> AppServiceSenderInstances { get; set; } = [];
    /// <summary>The process that runs the periodic clean-ups (a <c>background</c> worker); empty: the main process.</summary>
    public string? BackgroundTasksInstance { get; set; }
    /// <summary>
    /// The <c>event_writer</c> workers that write events beside the main process (which still writes the rooms' other
    /// events: creations, joins, federation); empty: the main process writes every event.
    /// </summary>
    public List<string> EventWriterInstances { get; set; } = [];

    /// <summary>
    /// Whether this process handles <paramref name="key"/> (a destination, a user, a service) of the work split among
    /// <paramref name="instances"/> by a hash of the key; the main process when there are none.
    /// </summary>
    public bool Handles(IReadOnlyList<string> instances, string key) => instances.Count > 0
        ? instances[(int)(System.IO.Hashing.XxHash32.HashToUInt32(System.Text.Encoding.UTF8.GetBytes(key)) % (uint)instances.Count)] == InstanceName
        : IsMain;

    /// <summary>Whether this process takes part in the work split among <paramref name="instances"/> (the main process when there are none).</summary>
    public bool TakesPart(IReadOnlyList<string> instances) => instances.Count > 0 ? instances.Contains(InstanceName) : IsMain;

    public bool IsMain => Role == MainRole;
    public bool RunsBackgroundTasks => string.IsNullOrEmpty(BackgroundTasksInstance) ? IsMain : BackgroundTasksInstance == InstanceName;
    public bool Replicates => !string.IsNullOrWhiteSpace(Redis);
    /// <summary>Whether several processes write events (each taking positions from one sequence).</summary>
    public bool SharesEvents => EventWriterInstances.Count > 0;
    /// <summary>The processes that write events when several do: the main process (named <c>main</c> here) and the event writers.</summary>
    public IReadOnlyList<string> EventWriters => ["main", .. EventWriterInstances];
    /// <summary>This process's name among <see cref="EventWriters"/>, or null when it writes no events.</summary>
    public string? EventWriterName => IsMain ? "main" : Role == EventWriterRole ? InstanceName : null;
}

public sealed class PresenceConfig
{
    public bool Enabled { get; set; } = true;
    public long IdleAfterMs { get; set; } = 5 * 60 * 1000;
}

public sealed class UserDirectoryConfig
{
    public bool SearchAllUsers { get; set; }
}

public sealed class FederationConfig
{
    public bool Enabled { get; set; } = true;
    public bool PlainHttp { get; set; }
    public string? TrustedCaFile { get; set; }
    public List<TrustedKeyServerConfig> TrustedKeyServers { get; set; } = [];
}

/// <summary>A notary asked for a server's keys when that server cannot be reached (Synapse's <c>trusted_key_servers</c>).</summary>
public sealed class TrustedKeyServerConfig
{
    public string ServerName { get; set; } = "";
    /// <summary>The notary's own keys (key ID to unpadded base64); fetched from it directly when not given.</summary>
    public Dictionary<string, string>? VerifyKeys { get; set; }
}

public sealed class LoggingConfig
{
    public string Level { get; set; } = "Information";
    /// <summary><c>text</c> (one line per entry) or <c>json</c> (one JSON object per line, for log shippers).</summary>
    public string Format { get; set; } = "text";
    /// <summary>One line per answered request: method, route template, status and duration (never the query string).</summary>
    public bool AccessLog { get; set; }
}

/// <summary>
/// Requests to URLs that users or other servers choose (URL previews, push gateways, media redirects): the addresses
/// they may reach. Federation has its own client and rules.
/// </summary>
public sealed class OutboundHttpConfig
{
    /// <summary>Addresses never reached, in CIDR notation; defaults to loopback, private, link-local, multicast and reserved ranges.</summary>
    public List<string> IpRangeDenylist { get; set; } = [.. DefaultDeniedRanges];
    /// <summary>Exceptions to the deny list (an intranet wiki or push gateway, say).</summary>
    public List<string> IpRangeAllowlist { get; set; } = [];
    public string UserAgent { get; set; } = "Matrix.Homeserver";

    public static readonly string[] DefaultDeniedRanges =
    [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
        "::1/128", "::/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10", "64:ff9b::/96", "::ffff:0:0/96",
    ];
}
