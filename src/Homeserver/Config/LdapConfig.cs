namespace Matrix.Homeserver.Config;

/// <summary>Password login against an LDAP directory or Active Directory (see config.sample.yaml, <c>ldap:</c>).</summary>
public sealed class LdapConfig
{
    public bool Enabled { get; set; }
    /// <summary><c>ldap://host:port</c> or <c>ldaps://host:port</c>.</summary>
    public string Uri { get; set; } = "ldap://127.0.0.1:389";
    public bool StartTls { get; set; }
    /// <summary>PEM file of the CA that signed the directory's certificate (LDAPS and StartTLS); the system's CAs otherwise.</summary>
    public string? TlsCaFile { get; set; }
    public string BaseDn { get; set; } = "";
    /// <summary>Service account for search-then-bind; without it, <see cref="BindDnTemplate"/> binds directly.</summary>
    public string? BindDn { get; set; }
    public string? BindPassword { get; set; }
    /// <summary>e.g. <c>uid={username},ou=people,dc=example,dc=org</c> or, for Active Directory, <c>{username}@corp.example.com</c>.</summary>
    public string? BindDnTemplate { get; set; }
    /// <summary>Finds the entry of the name typed at login; <c>{username}</c> is replaced, escaped per RFC 4515.</summary>
    public string UserFilter { get; set; } = "(&(objectClass=inetOrgPerson)(uid={username}))";
    /// <summary>Entries matching it cannot log in (AD: <c>(userAccountControl:1.2.840.113556.1.4.803:=2)</c>).</summary>
    public string? DisabledFilter { get; set; }
    public LdapAttributesConfig Attributes { get; set; } = new();
    public int TimeoutMs { get; set; } = 5000;
    /// <summary>Accounts with a local password (a local admin) can still log in with it, also while the directory is down.</summary>
    public bool LocalPasswordFallback { get; set; } = true;
}

public sealed class LdapAttributesConfig
{
    /// <summary>The attribute whose value (lower-cased) becomes the Matrix localpart; AD: <c>sAMAccountName</c>.</summary>
    public string Localpart { get; set; } = "uid";
    public string DisplayName { get; set; } = "cn";
    public string Mail { get; set; } = "mail";
}
