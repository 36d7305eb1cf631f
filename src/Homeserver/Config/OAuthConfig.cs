namespace Matrix.Homeserver.Config;

/// <summary>The OAuth 2.0 API served by the homeserver itself (see config.sample.yaml, <c>oauth:</c>).</summary>
public sealed class OAuthConfig
{
    public bool Enabled { get; set; }
    /// <summary>Lifetime of an authorisation request and of the code it ends with.</summary>
    public long AuthorizationCodeLifetimeMs { get; set; } = 10 * 60 * 1000;
    public long DeviceCodeLifetimeMs { get; set; } = 10 * 60 * 1000;
    public int DeviceCodePollIntervalSeconds { get; set; } = 5;
    public long BrowserSessionLifetimeMs { get; set; } = 7L * 24 * 60 * 60 * 1000;
    /// <summary>How long an approval of a cross-signing reset on the account page lets the client replace its keys.</summary>
    public long CrossSigningResetLifetimeMs { get; set; } = 10 * 60 * 1000;
}

/// <summary>Synapse's <c>password_config</c>: with <see cref="Enabled"/> false, nobody signs in with a password.</summary>
public sealed class PasswordConfig
{
    public bool Enabled { get; set; } = true;
}
