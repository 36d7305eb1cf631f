using Matrix.AppServices.Ldap;
using Matrix.AppServices.Registration;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Ldap;

/// <summary>The directory-sync bridge's config (ldap-bridge.sample.yaml documents every key).</summary>
public sealed class LdapSyncConfig : BridgeConfig
{
    public DirectorySection Directory { get; set; } = new();
    public SyncSection Sync { get; set; } = new();
    public List<GroupMapping> Groups { get; set; } = [];
    public DepartmentSection Departments { get; set; } = new();

    public sealed class DirectorySection
    {
        public string Uri { get; set; } = "ldap://127.0.0.1:389";
        public bool StartTls { get; set; }
        public string? TlsCaFile { get; set; }
        public string BindDn { get; set; } = "";
        public string BindPassword { get; set; } = "";
        public string UserBaseDn { get; set; } = "";
        public string UserFilter { get; set; } = "(objectClass=inetOrgPerson)";
        /// <summary>Entries matching it are disabled (AD: <c>(userAccountControl:1.2.840.113556.1.4.803:=2)</c>).</summary>
        public string? DisabledFilter { get; set; }
        public string GroupBaseDn { get; set; } = "";
        public string GroupFilter { get; set; } = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))";
        public string MemberAttribute { get; set; } = "member";
        public AttributeSection Attributes { get; set; } = new();
        /// <summary>The operational attribute every change updates: <c>modifyTimestamp</c>, or AD's <c>uSNChanged</c>.</summary>
        public string ChangeAttribute { get; set; } = "modifyTimestamp";
        public int PageSize { get; set; } = 500;
        public int TimeoutMs { get; set; } = 10_000;

        public LdapEndpoint Endpoint => new(Uri, StartTls, TlsCaFile, TimeoutMs);
    }

    public sealed class AttributeSection
    {
        public string Localpart { get; set; } = "uid";
        public string DisplayName { get; set; } = "cn";
        public string Department { get; set; } = "departmentNumber";
        /// <summary>The avatar source (AD: <c>thumbnailPhoto</c>); empty to leave avatars alone.</summary>
        public string Photo { get; set; } = "jpegPhoto";
    }

    public sealed class SyncSection
    {
        public int IntervalSeconds { get; set; } = 300;
        public bool DeactivateRemovedUsers { get; set; } = true;
        /// <summary>
        /// Periodic runs skip the reconciliation while the directory's fingerprint is unchanged; every this many runs
        /// reconcile anyway, correcting changes made on the homeserver side. 1 reconciles every time.
        /// </summary>
        public int FullSyncEvery { get; set; } = 12;
    }

    /// <summary>A group whose members (nested groups included) belong in a room or space, at a power level.</summary>
    public sealed class GroupMapping
    {
        public string Group { get; set; } = "";
        /// <summary>Localpart of the room's alias: <c>#{alias}:{server_name}</c>; the room is created if missing.</summary>
        public string Alias { get; set; } = "";
        public string? Name { get; set; }
        public bool Space { get; set; }
        public int PowerLevel { get; set; }
    }

    /// <summary>One space per department (the users' department attribute), aliased <c>#{alias_prefix}{department}</c>.</summary>
    public sealed class DepartmentSection
    {
        public bool Enabled { get; set; }
        public string AliasPrefix { get; set; } = "department-";
    }

    /// <summary>
    /// The bridge acts as the directory's users, who are ordinary users of the server (they also log in with their
    /// directory password): a non-exclusive namespace of every local user, and no URL, as it needs no events.
    /// </summary>
    public override RegistrationRequest RegistrationRequest() => new(AppService.Id, EffectiveUrl, AppService.SenderLocalpart,
        $"@.*:{System.Text.RegularExpressions.Regex.Escape(Homeserver.ServerName)}", UserNamespaceExclusive: false, RateLimited: false);

    protected override bool UsesUserPrefix => false;

    public override void Validate()
    {
        base.Validate();
        Require(Directory.BindDn, "directory.bind_dn");
        Require(Directory.UserBaseDn, "directory.user_base_dn");
        Require(Directory.GroupBaseDn, "directory.group_base_dn");
        if (!System.Uri.TryCreate(Directory.Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("ldap" or "ldaps"))
            throw new BridgeConfigException("directory.uri must be an ldap:// or ldaps:// URL");
        if (Directory.PageSize is < 1 or > 10_000)
            throw new BridgeConfigException("directory.page_size must be between 1 and 10000");
        Require(Directory.ChangeAttribute, "directory.change_attribute");
        if (Sync.FullSyncEvery < 1)
            throw new BridgeConfigException("sync.full_sync_every must be at least 1");
        if (Sync.IntervalSeconds < 10)
            throw new BridgeConfigException("sync.interval_seconds must be at least 10");
        foreach (var (mapping, i) in Groups.Select((m, i) => (m, i)))
        {
            Require(mapping.Group, $"groups[{i}].group");
            Require(mapping.Alias, $"groups[{i}].alias");
            if (mapping.PowerLevel is < 0 or > 100)
                throw new BridgeConfigException($"groups[{i}].power_level must be between 0 and 100");
        }
        foreach (var room in Groups.GroupBy(m => m.Alias).Where(g => g.Select(m => m.Space).Distinct().Count() > 1))
            throw new BridgeConfigException($"groups: '{room.Key}' is mapped both as a room and as a space");
    }

    protected override void ResolvePaths(string folder)
    {
        if (Directory.TlsCaFile is { Length: > 0 } ca)
            Directory.TlsCaFile = Path.GetFullPath(ca, folder);
    }
}
