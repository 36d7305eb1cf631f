namespace Matrix.Homeserver.Config;

/// <summary>
/// Email through an SMTP server (see config.sample.yaml, <c>email:</c>), as Synapse's <c>email</c> section: validation
/// mails for email addresses on accounts, at registration and for password resets.
/// </summary>
public sealed class EmailConfig
{
    public bool Enabled { get; set; }
    public string SmtpHost { get; set; } = "localhost";
    public int SmtpPort { get; set; } = 25;
    public string? SmtpUser { get; set; }
    public string? SmtpPass { get; set; }
    /// <summary>Refuse to send unless the server offers STARTTLS.</summary>
    public bool RequireTransportSecurity { get; set; }
    /// <summary>Speak TLS from the first byte (implicit TLS, usually port 465) instead of STARTTLS.</summary>
    public bool ForceTls { get; set; }
    /// <summary>Use STARTTLS when the server offers it.</summary>
    public bool EnableTls { get; set; } = true;
    /// <summary>The From header; <c>%(app)s</c> is replaced by <see cref="AppName"/> (Synapse's syntax).</summary>
    public string NotifFrom { get; set; } = "";
    public string AppName { get; set; } = "Matrix";
    /// <summary>A web client, linked from the page that confirms a validated address (when the client gave no next_link).</summary>
    public string? ClientBaseUrl { get; set; }
    public long ValidationTokenLifetimeMs { get; set; } = 60 * 60 * 1000;
    /// <summary>A folder whose <c>registration.txt</c>, <c>add_threepid.txt</c>, and <c>password_reset.txt</c> replace the built-in mails.</summary>
    public string? TemplateDir { get; set; }
    public int TimeoutMs { get; set; } = 30_000;
}

/// <summary>How this server talks to the identity servers clients name (3PID binding, lookups, third-party invites).</summary>
public sealed class IdentityServersConfig
{
    /// <summary>TEST ONLY: plain HTTP instead of HTTPS.</summary>
    public bool PlainHttp { get; set; }
    /// <summary>TEST ONLY: accept any TLS certificate (Synapse's use_insecure_ssl_client_just_for_testing_do_not_use).</summary>
    public bool InsecureSkipTlsVerify { get; set; }
    public int TimeoutMs { get; set; } = 10_000;
}
