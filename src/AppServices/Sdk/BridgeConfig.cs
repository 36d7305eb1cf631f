using Matrix.AppServices.Registration;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Matrix.AppServices.Sdk;

public sealed class BridgeConfigException(string message) : Exception(message);

/// <summary>
/// The config sections every bridge shares (a bridge's own config class derives from this and adds its section):
/// <code>
/// homeserver:
///   url: http://127.0.0.1:8008       # client-server API of the homeserver
///   server_name: example.org
/// appservice:
///   id: ldap                         # registration ID
///   bind_address: 127.0.0.1          # where the bridge listens for the homeserver
///   port: 29330                      # 0: no listener, for bridges that only act (no transactions pushed)
///   url: http://127.0.0.1:29330      # how the homeserver reaches it (default: bind address and port)
///   registration: ldap-registration.yaml
///   data_dir: ./ldap-data            # transaction log and state store
///   sender_localpart: ldapbot
///   user_prefix: ldap_               # the bridge's users are @{user_prefix}...:{server_name}
/// </code>
/// Relative paths are resolved against the config file's folder.
/// </summary>
public class BridgeConfig
{
    public HomeserverSection Homeserver { get; set; } = new();
    [YamlMember(Alias = "appservice")]
    public AppServiceSection AppService { get; set; } = new();

    public sealed class HomeserverSection
    {
        public string Url { get; set; } = "http://127.0.0.1:8008";
        public string ServerName { get; set; } = "";
    }

    public sealed class AppServiceSection
    {
        public string Id { get; set; } = "";
        public string BindAddress { get; set; } = "127.0.0.1";
        public int Port { get; set; }
        public string? Url { get; set; }
        public string Registration { get; set; } = "";
        public string DataDir { get; set; } = "./data";
        public string SenderLocalpart { get; set; } = "";
        public string UserPrefix { get; set; } = "";
    }

    public string? EffectiveUrl => AppService.Url ?? (AppService.Port == 0 ? null : $"http://{AppService.BindAddress}:{AppService.Port}");

    /// <summary>The registration this config asks for: exclusive users <c>@{user_prefix}.*:{server_name}</c>.</summary>
    public virtual RegistrationRequest RegistrationRequest() => new(AppService.Id, EffectiveUrl, AppService.SenderLocalpart,
        $"@{System.Text.RegularExpressions.Regex.Escape(AppService.UserPrefix)}.*:{System.Text.RegularExpressions.Regex.Escape(Homeserver.ServerName)}",
        RateLimited: false);

    public string UserId(string localpartSuffix) => $"@{AppService.UserPrefix}{localpartSuffix}:{Homeserver.ServerName}";

    /// <summary>Checks the shared sections; a bridge overrides to check its own too (calling this).</summary>
    public virtual void Validate()
    {
        Require(Homeserver.ServerName, "homeserver.server_name");
        if (!Uri.TryCreate(Homeserver.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            throw new BridgeConfigException("homeserver.url must be an http(s) URL");
        Require(AppService.Id, "appservice.id");
        Require(AppService.Registration, "appservice.registration");
        Require(AppService.SenderLocalpart, "appservice.sender_localpart");
        if (UsesUserPrefix)
            Require(AppService.UserPrefix, "appservice.user_prefix");
        if (AppService.Port is < 0 or > 65535)
            throw new BridgeConfigException("appservice.port must be a TCP port (0: no listener)");
    }

    /// <summary>False for a bridge whose users are not under a prefix of its own.</summary>
    protected virtual bool UsesUserPrefix => true;

    protected static void Require(string value, string key)
    {
        if (string.IsNullOrWhiteSpace(value))
            throw new BridgeConfigException($"{key} is required");
    }

    /// <summary>Reads a bridge config: unknown keys and mistyped values are errors naming the line and the key; then validated.</summary>
    public static T Load<T>(string path) where T : BridgeConfig, new()
    {
        if (!File.Exists(path))
            throw new BridgeConfigException($"config file '{path}' does not exist");
        T config;
        var yaml = File.ReadAllText(path);
        try
        {
            config = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build()
                .Deserialize<T?>(yaml) ?? new T();
        }
        catch (YamlException e)
        {
            throw new BridgeConfigException($"{path}, {ConfigKeyPath.Explain(yaml, e, typeof(T))}");
        }
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (config.AppService.Registration.Length > 0)
            config.AppService.Registration = Path.GetFullPath(config.AppService.Registration, folder);
        if (config.AppService.DataDir.Length > 0)
            config.AppService.DataDir = Path.GetFullPath(config.AppService.DataDir, folder);
        config.ResolvePaths(folder);
        config.Validate();
        return config;
    }

    /// <summary>Resolves a bridge's own relative paths against the config file's folder.</summary>
    protected virtual void ResolvePaths(string folder)
    {
    }
}
