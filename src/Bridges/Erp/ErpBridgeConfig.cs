using System.Text.RegularExpressions;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>The ERP bridge's config (<c>erp-bridge.sample.yaml</c> documents every key).</summary>
public sealed class ErpBridgeConfig : BridgeConfig
{
    public WebhookSection Webhooks { get; set; } = new();
    public DeliverySection Delivery { get; set; } = new();
    public List<SystemSection> Systems { get; set; } = [];
    public List<HookSection> Hooks { get; set; } = [];
    public List<CommandSection> Commands { get; set; } = [];
    public List<SubscriptionSection> Subscriptions { get; set; } = [];
    public TemplateSection Templates { get; set; } = new();
    public TransformSection Transforms { get; set; } = new();
    public GenericWebhookSection GenericWebhooks { get; set; } = new();
    public List<FeedSection> Feeds { get; set; } = [];

    public sealed class TransformSection
    {
        public int TimeoutMs { get; set; } = 1000;
        public long MemoryBytes { get; set; } = 8_000_000;
        public int MaxRecursion { get; set; } = 64;
        public int MaxStatements { get; set; } = 1_000_000;

        public TransformLimits Limits => new(TimeSpan.FromMilliseconds(TimeoutMs), MemoryBytes, MaxRecursion, MaxStatements);
    }

    public sealed class GenericWebhookSection
    {
        public bool Enabled { get; set; } = true;
        public int PowerLevel { get; set; } = 50;
        public int RateLimitPerMinute { get; set; } = 60;
        public bool AllowTransforms { get; set; } = true;
    }

    public sealed class FeedSection
    {
        public string Id { get; set; } = "";
        public string Url { get; set; } = "";
        public string Room { get; set; } = "";
        public int IntervalSeconds { get; set; } = 600;
    }

    public sealed class TemplateSection
    {
        /// <summary>What a <c>{{field}}</c> the data lacks renders as (<c>{field}</c> is its path); each is also logged.</summary>
        public string MissingField { get; set; } = "[missing {field}]";
    }

    public sealed class WebhookSection
    {
        public string BindAddress { get; set; } = "127.0.0.1";
        public int Port { get; set; } = 29340;
        public int ReplayWindowSeconds { get; set; } = 300;
        public int MaxBodyBytes { get; set; } = 1_048_576;
        /// <summary>How senders reach the listener (behind a proxy): the base of the URLs of room-created webhooks.</summary>
        public string? PublicUrl { get; set; }
    }

    public sealed class DeliverySection
    {
        public int TickSeconds { get; set; } = 5;
        public int MaxBackoffSeconds { get; set; } = 600;
        public int TimeoutSeconds { get; set; } = 30;
    }

    public sealed class SystemSection
    {
        public string Id { get; set; } = "";
        public string DisplayName { get; set; } = "";
        public string BaseUrl { get; set; } = "";
        public string? BearerToken { get; set; }
        public string? Username { get; set; }
        public string? Password { get; set; }
        /// <summary>ERP user names (or e-mail addresses) to Matrix user IDs, for mentions; others map by localpart.</summary>
        public Dictionary<string, string> Users { get; set; } = [];
    }

    public sealed class HookSection
    {
        public string Id { get; set; } = "";
        public string System { get; set; } = "";
        public string Provider { get; set; } = "erp";
        public string Secret { get; set; } = "";
        public string Room { get; set; } = "";
        public string Template { get; set; } = "";
        public string? Transform { get; set; }
        public string? HtmlTemplate { get; set; }
        public string? Mention { get; set; }
        public int RateLimitPerMinute { get; set; } = 60;
    }

    public sealed class CommandSection
    {
        public string Name { get; set; } = "";
        public string System { get; set; } = "";
        public string Method { get; set; } = "GET";
        public string Path { get; set; } = "";
        public string? ArgumentPattern { get; set; }
        public string Usage { get; set; } = "";
        public string Reply { get; set; } = "";
        public string? HtmlReply { get; set; }
        public List<string> Rooms { get; set; } = [];
    }

    public sealed class SubscriptionSection
    {
        public string Room { get; set; } = "";
        public string System { get; set; } = "";
        public string Method { get; set; } = "POST";
        public string Path { get; set; } = "";
        public List<string> EventTypes { get; set; } = ["m.room.message"];
        public string? BodyPattern { get; set; }
    }

    public override void Validate()
    {
        base.Validate();
        if (EffectiveUrl is null)
            throw new BridgeConfigException("appservice.port (or url) is required: commands and subscriptions arrive as transactions");
        if (Webhooks.Port is < 1 or > 65535)
            throw new BridgeConfigException("webhooks.port must be a TCP port");
        if (Webhooks.ReplayWindowSeconds is < 10 or > 86400)
            throw new BridgeConfigException("webhooks.replay_window_seconds must be between 10 and 86400");
        if (Delivery.TickSeconds is < 1 or > 300 || Delivery.MaxBackoffSeconds < Delivery.TickSeconds || Delivery.TimeoutSeconds < 1)
            throw new BridgeConfigException("delivery: tick_seconds 1..300, max_backoff_seconds at least tick_seconds, timeout_seconds at least 1");
        var systems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (system, i) in Systems.Select((s, i) => (s, i)))
        {
            if (!Regex.IsMatch(system.Id, "^[a-z0-9._=-]+$"))
                throw new BridgeConfigException($"systems[{i}].id must be lowercase letters, digits or ._=- (it names the system's Matrix user)");
            if (!systems.Add(system.Id))
                throw new BridgeConfigException($"systems[{i}].id '{system.Id}' is used twice");
            if (!Uri.TryCreate(system.BaseUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                throw new BridgeConfigException($"systems[{i}].base_url must be an http(s) URL");
        }
        void RequireSystem(string id, string key)
        {
            if (!systems.Contains(id))
                throw new BridgeConfigException($"{key}: no system '{id}' in systems");
        }
        var hooks = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (hook, i) in Hooks.Select((h, i) => (h, i)))
        {
            if (!Regex.IsMatch(hook.Id, "^[A-Za-z0-9_-]+$") || !hooks.Add(hook.Id))
                throw new BridgeConfigException($"hooks[{i}].id must be unique letters, digits, _ or - (it is the URL /hooks/{{id}})");
            RequireSystem(hook.System, $"hooks[{i}].system");
            if (!WebhookProvider.ByName.TryGetValue(hook.Provider, out var provider))
                throw new BridgeConfigException($"hooks[{i}].provider must be one of {string.Join(", ", WebhookProvider.ByName.Keys)}");
            if (hook.Secret.Length < 16)
                throw new BridgeConfigException($"hooks[{i}].secret must be at least 16 characters");
            Require(hook.Room, $"hooks[{i}].room");
            if (provider.NeedsTemplate && hook.Transform is null)
                Require(hook.Template, $"hooks[{i}].template");
            CheckTransform(hook.Transform, $"hooks[{i}].transform");
            if (hook.RateLimitPerMinute < 1)
                throw new BridgeConfigException($"hooks[{i}].rate_limit_per_minute must be at least 1");
            CheckTemplate(hook.Template, $"hooks[{i}].template");
            CheckTemplate(hook.HtmlTemplate, $"hooks[{i}].html_template");
            CheckTemplate(hook.Mention, $"hooks[{i}].mention");
        }
        foreach (var (command, i) in Commands.Select((c, i) => (c, i)))
        {
            if (!Regex.IsMatch(command.Name, "^[a-z0-9_-]+$") || command.Name == ErpBridge.WebhookCommand)
                throw new BridgeConfigException($"commands[{i}].name must be lowercase letters, digits, _ or - (and not '{ErpBridge.WebhookCommand}')");
            RequireSystem(command.System, $"commands[{i}].system");
            if (command.Method.ToUpperInvariant() is not ("GET" or "POST" or "PUT" or "PATCH" or "DELETE"))
                throw new BridgeConfigException($"commands[{i}].method must be GET, POST, PUT, PATCH or DELETE");
            if (!command.Path.StartsWith('/'))
                throw new BridgeConfigException($"commands[{i}].path must start with '/'");
            CheckPattern(command.ArgumentPattern, $"commands[{i}].argument_pattern");
            Require(command.Reply, $"commands[{i}].reply");
            CheckTemplate(command.Reply, $"commands[{i}].reply");
            CheckTemplate(command.HtmlReply, $"commands[{i}].html_reply");
        }
        foreach (var (subscription, i) in Subscriptions.Select((s, i) => (s, i)))
        {
            Require(subscription.Room, $"subscriptions[{i}].room");
            RequireSystem(subscription.System, $"subscriptions[{i}].system");
            if (!subscription.Path.StartsWith('/'))
                throw new BridgeConfigException($"subscriptions[{i}].path must start with '/'");
            if (subscription.Method.ToUpperInvariant() is not ("POST" or "PUT"))
                throw new BridgeConfigException($"subscriptions[{i}].method must be POST or PUT");
            CheckPattern(subscription.BodyPattern, $"subscriptions[{i}].body_pattern");
        }
        ValidateExtras();
    }

    private void ValidateExtras()
    {
        if (Transforms.TimeoutMs < 1 || Transforms.MemoryBytes < 100_000 || Transforms.MaxRecursion < 1 || Transforms.MaxStatements < 1)
            throw new BridgeConfigException("transforms: timeout_ms, max_recursion and max_statements at least 1, memory_bytes at least 100000");
        if (GenericWebhooks.RateLimitPerMinute < 1)
            throw new BridgeConfigException("generic_webhooks.rate_limit_per_minute must be at least 1");
        if (Webhooks.PublicUrl is { } publicUrl && (!Uri.TryCreate(publicUrl, UriKind.Absolute, out var listener) || listener.Scheme is not ("http" or "https")))
            throw new BridgeConfigException("webhooks.public_url must be an http(s) URL");
        var feeds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (feed, i) in Feeds.Select((f, i) => (f, i)))
        {
            if (!Regex.IsMatch(feed.Id, "^[A-Za-z0-9_-]+$") || !feeds.Add(feed.Id))
                throw new BridgeConfigException($"feeds[{i}].id must be unique letters, digits, _ or -");
            if (!Uri.TryCreate(feed.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                throw new BridgeConfigException($"feeds[{i}].url must be an http(s) URL");
            Require(feed.Room, $"feeds[{i}].room");
            if (feed.IntervalSeconds < 10)
                throw new BridgeConfigException($"feeds[{i}].interval_seconds must be at least 10");
        }
    }

    private void CheckTransform(string? code, string key)
    {
        try
        {
            if (code is not null)
                PayloadTransform.Parse(code, Transforms.Limits);
        }
        catch (FormatException e)
        {
            throw new BridgeConfigException($"{key}: {e.Message}");
        }
    }

    /// <summary>The public base URL of the webhook listener.</summary>
    public string WebhookBaseUrl => (Webhooks.PublicUrl ?? $"http://{Webhooks.BindAddress}:{Webhooks.Port}").TrimEnd('/');

    private static void CheckTemplate(string? source, string key)
    {
        try
        {
            if (source is not null)
                Template.Parse(source);
        }
        catch (FormatException e)
        {
            throw new BridgeConfigException($"{key}: {e.Message}");
        }
    }

    private static void CheckPattern(string? pattern, string key)
    {
        try
        {
            if (pattern is not null)
                _ = new Regex(pattern);
        }
        catch (ArgumentException e)
        {
            throw new BridgeConfigException($"{key}: {e.Message}");
        }
    }

    public SystemSection System(string id) => Systems.First(s => s.Id == id);
}
