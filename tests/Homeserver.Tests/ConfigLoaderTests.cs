using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Tests;

public sealed class ConfigLoaderTests
{
    [Fact]
    public void The_sample_config_parses_to_the_built_in_defaults()
    {
        var sample = ConfigLoader.Parse(ConfigLoader.SampleText());
        var defaults = new HomeserverConfig();
        Assert.Equal(defaults.ServerName, sample.ServerName);
        Assert.Equal(defaults.DefaultRoomVersion, sample.DefaultRoomVersion);
        Assert.Equal(defaults.Federation.TrustedKeyServers.Count, sample.Federation.TrustedKeyServers.Count);
        Assert.Equal(defaults.OldSigningKeys.Count, sample.OldSigningKeys.Count);
        Assert.Equal(defaults.Listeners[0].Port, sample.Listeners[0].Port);
        Assert.Equal(defaults.Listeners[0].BindAddress, sample.Listeners[0].BindAddress);
        Assert.Equal(defaults.Database.Engine, sample.Database.Engine);
        Assert.Equal(defaults.Registration.Enabled, sample.Registration.Enabled);
        Assert.Equal(defaults.Registration.AllowGuestAccess, sample.Registration.AllowGuestAccess);
        Assert.Equal(defaults.Registration.Recaptcha.SiteverifyApi, sample.Registration.Recaptcha.SiteverifyApi);
        Assert.Equal(defaults.Registration.Recaptcha.Enabled, sample.Registration.Recaptcha.Enabled);
        Assert.Equal(defaults.Auth.PasswordHashing.OpsLimit, sample.Auth.PasswordHashing.OpsLimit);
        Assert.Equal(defaults.Auth.PasswordHashing.MemLimitKib, sample.Auth.PasswordHashing.MemLimitKib);
        Assert.Equal(defaults.Auth.RefreshableAccessTokenLifetimeMs, sample.Auth.RefreshableAccessTokenLifetimeMs);
        Assert.Equal(defaults.Limits.MaxJsonBodyBytes, sample.Limits.MaxJsonBodyBytes);
        Assert.Equal(defaults.Caches.ExpireAfterMs, sample.Caches.ExpireAfterMs);
        Assert.Equal(defaults.RateLimits.Login.PerSecond, sample.RateLimits.Login.PerSecond);
        Assert.Equal(defaults.RateLimits.ClientRequests.Burst, sample.RateLimits.ClientRequests.Burst);
        Assert.Equal(defaults.Media.MaxUploadBytes, sample.Media.MaxUploadBytes);
        Assert.Equal(defaults.Media.UnusedExpiresAfterMs, sample.Media.UnusedExpiresAfterMs);
        Assert.Equal(defaults.OutboundHttp.IpRangeDenylist, sample.OutboundHttp.IpRangeDenylist);
        Assert.Equal(defaults.Oauth.Enabled, sample.Oauth.Enabled);
        Assert.Equal(defaults.Oauth.AuthorizationCodeLifetimeMs, sample.Oauth.AuthorizationCodeLifetimeMs);
        Assert.Equal(defaults.Oauth.DeviceCodeLifetimeMs, sample.Oauth.DeviceCodeLifetimeMs);
        Assert.Equal(defaults.Oauth.DeviceCodePollIntervalSeconds, sample.Oauth.DeviceCodePollIntervalSeconds);
        Assert.Equal(defaults.Oauth.BrowserSessionLifetimeMs, sample.Oauth.BrowserSessionLifetimeMs);
        Assert.Equal(defaults.Oauth.CrossSigningResetLifetimeMs, sample.Oauth.CrossSigningResetLifetimeMs);
        Assert.Equal(defaults.PasswordConfig.Enabled, sample.PasswordConfig.Enabled);
        Assert.Equal(defaults.Media.Thumbnails.Sizes.Select(t => (t.Width, t.Height, t.Method)),
            sample.Media.Thumbnails.Sizes.Select(t => (t.Width, t.Height, t.Method)));
    }

    [Fact]
    public void The_sample_documents_every_option()
    {
        var sample = ConfigLoader.SampleText();
        foreach (var key in AllKeys(typeof(HomeserverConfig)))
            Assert.Contains(key + ":", sample);
    }

    [Fact]
    public void Trial_defaults_open_registration_but_a_config_file_does_not()
    {
        Assert.True(ConfigLoader.TrialDefaults().Registration.Enabled);
        Assert.False(ConfigLoader.Parse("server_name: example.org\n").Registration.Enabled);
    }

    [Theory]
    [InlineData("server_nam: x\n", "server_nam")]
    [InlineData("database:\n  engin: sqlite\n", "database.engin")]
    [InlineData("database:\n  engine: mysql\n", "database.engine")]
    [InlineData("database:\n  engine: postgres\n", "database.connection_string")]
    [InlineData("listeners:\n  - port: eighty\n", "listeners[0].port")]
    [InlineData("listeners:\n  - bind_address: nowhere\n", "listeners[0].bind_address")]
    [InlineData("listeners: 5\n", "listeners")]
    [InlineData("server_name: \"bad name\"\n", "server_name")]
    [InlineData("default_room_version: \"13\"\n", "default_room_version")]
    [InlineData("oauth:\n  authorization_code_lifetime_ms: 0\n", "oauth.authorization_code_lifetime_ms")]
    [InlineData("caches:\n  events: 0\n", "caches.events")]
    [InlineData("caches:\n  expire_after_ms: 0\n", "caches.expire_after_ms")]
    [InlineData("registration:\n  recaptcha:\n    required: true\n", "registration.recaptcha.required")]
    [InlineData("registration:\n  recaptcha:\n    private_key: k\n", "registration.recaptcha.public_key")]
    [InlineData("worker:\n  role: writer\n", "worker.role")]
    [InlineData("worker:\n  instance_name: \"\"\n", "worker.instance_name")]
    [InlineData("worker:\n  role: sync\n  redis: \"127.0.0.1:6379\"\n", "worker.role")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nworker:\n  role: sync\n", "worker.redis")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nworker:\n  role: sync\n  redis: \"127.0.0.1:6379\"\n", "listeners")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nlisteners:\n  - resources: [client]\nworker:\n  role: federation_reader\n  redis: \"127.0.0.1:6379\"\n", "listeners")]
    // Only the federation reader and the event writers (other servers' transactions) serve the federation API beside the main process.
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nlisteners:\n  - resources: [client, federation]\nworker:\n  role: sync\n  redis: \"127.0.0.1:6379\"\n", "listeners")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nlisteners:\n  - resources: [metrics]\nworker:\n  instance_name: bg2\n  role: background\n  redis: \"127.0.0.1:6379\"\n  background_tasks_instance: bg1\n", "worker.background_tasks_instance")]
    [InlineData("worker:\n  background_tasks_instance: bg1\n", "worker.redis")]
    [InlineData("worker:\n  redis: \"127.0.0.1:6379,bogus=1\"\n", "worker.redis")]
    [InlineData("worker:\n  federation_sender_instances: [fs1]\n", "worker.redis")]
    [InlineData("worker:\n  pusher_instances: [p1]\n", "worker.redis")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nlisteners:\n  - resources: [metrics]\nworker:\n  instance_name: p2\n  role: pusher\n  redis: \"127.0.0.1:6379\"\n  pusher_instances: [p1]\n", "worker.pusher_instances")]
    [InlineData("worker:\n  redis: \"127.0.0.1:6379\"\n  federation_sender_instances: [fs1, fs1]\n", "worker.federation_sender_instances")]
    [InlineData("worker:\n  event_writer_instances: [w1]\n", "worker.redis")]
    [InlineData("worker:\n  redis: \"127.0.0.1:6379\"\n  event_writer_instances: [w1]\n", "worker.event_writer_instances")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nworker:\n  redis: \"127.0.0.1:6379\"\n  event_writer_instances: [main, w1]\n", "worker.event_writer_instances")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nlisteners:\n  - resources: [client]\nworker:\n  instance_name: w2\n  role: event_writer\n  redis: \"127.0.0.1:6379\"\n  event_writer_instances: [w1]\n", "worker.event_writer_instances")]
    [InlineData("database:\n  engine: postgres\n  connection_string: Host=db\nlisteners:\n  - resources: [metrics]\nworker:\n  instance_name: fs2\n  role: federation_sender\n  redis: \"127.0.0.1:6379\"\n  federation_sender_instances: [fs1]\n", "worker.federation_sender_instances")]
    [InlineData("caches:\n  device_key_counts: -1\n", "caches.device_key_counts")]
    [InlineData("oauth:\n  device_code_poll_interval_seconds: -1\n", "oauth.device_code_poll_interval_seconds")]
    [InlineData("password_config:\n  enabled: maybe\n", "password_config.enabled")]
    [InlineData("old_signing_keys:\n  \"ed25519:a\": { key: short, expired_ts: 5 }\n", "old_signing_keys.ed25519:a")]
    [InlineData("federation:\n  trusted_key_servers:\n    - server_name: \"bad name\"\n", "federation.trusted_key_servers[0].server_name")]
    [InlineData("federation:\n  trusted_key_servers:\n    - { server_name: n.org, verify_keys: { \"ed25519:a\": short } }\n", "federation.trusted_key_servers[0].verify_keys")]
    [InlineData("federation:\n  trusted_key_servers:\n    - { server_name: n.org, verify_keys: [a] }\n", "federation.trusted_key_servers[0].verify_keys")]
    [InlineData("registration:\n  enabled: perhaps\n", "registration.enabled")]
    [InlineData("registration:\n  shared_secret: short\n", "registration.shared_secret")]
    [InlineData("registration_shared_secret: short\n", "registration.shared_secret")]
    [InlineData("registration_shared_secret: 0123456789abcdefXX\nregistration:\n  shared_secret: 0123456789abcdefYY\n", "registration_shared_secret")]
    [InlineData("auth:\n  password_hashing:\n    ops_limit: 0\n", "auth.password_hashing.ops_limit")]
    [InlineData("rate_limits:\n  login:\n    per_second: 0\n", "rate_limits.login.per_second")]
    [InlineData("logging:\n  level: loud\n", "logging.level")]
    [InlineData("public_baseurl: ftp://x\n", "public_baseurl")]
    [InlineData("media:\n  storage: ftp\n", "media.storage")]
    [InlineData("media:\n  storage: s3\n", "media.s3.bucket")]
    [InlineData("media:\n  max_upload_bytes: 0\n", "media.max_upload_bytes")]
    [InlineData("outbound_http:\n  ip_range_allowlist: [intranet]\n", "outbound_http.ip_range_allowlist")]
    [InlineData("media:\n  thumbnails:\n    sizes:\n      - { width: 0, height: 5, method: crop }\n", "media.thumbnails.sizes[0]")]
    [InlineData("email:\n  enabled: true\n", "email.notif_from")]
    [InlineData("email:\n  enabled: true\n  notif_from: a@b.org\n  smtp_port: 0\n", "email.smtp_port")]
    [InlineData("email:\n  enabled: true\n  notif_from: a@b.org\n  smtp_user: u\n", "email.smtp_user")]
    [InlineData("email:\n  enabled: true\n  notif_from: a@b.org\n  client_base_url: nowhere\n", "email.client_base_url")]
    [InlineData("oidc_providers:\n  - { idp_id: \"bad id\", issuer: \"https://id.example\", client_id: c, client_secret: s }\n", "oidc_providers[0].idp_id")]
    [InlineData("oidc_providers:\n  - { idp_id: a, issuer: \"https://id.example\", client_id: c, client_secret: s }\n  - { idp_id: a, issuer: \"https://id.example\", client_id: c, client_secret: s }\n", "oidc_providers[1].idp_id")]
    [InlineData("oidc_providers:\n  - { issuer: nowhere, client_id: c, client_secret: s }\n", "oidc_providers[0].issuer")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c }\n", "oidc_providers[0].client_auth_method")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_auth_method: private_key_jwt }\n", "oidc_providers[0].client_auth_method")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_secret: s, idp_icon: \"https://x/y.png\" }\n", "oidc_providers[0].idp_icon")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_secret: s, pkce_method: sometimes }\n", "oidc_providers[0].pkce_method")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_secret: s, discover: false }\n", "oidc_providers[0].authorization_endpoint")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_secret: s, user_mapping_provider: { config: { localpart_template: \"{{ user.a | shout }}\" } } }\n", "oidc_providers[0].user_mapping_provider.config.localpart_template")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_secret: s, attribute_requirements: [{ attribute: groups }] }\n", "oidc_providers[0].attribute_requirements[0]")]
    [InlineData("oidc_providers:\n  - { issuer: \"https://id.example\", client_id: c, client_auth_method: private_key_jwt, client_secret_jwt_key: { key: \"not a key\", jwt_header: { alg: ES256 } } }\n", "oidc_providers[0].client_secret_jwt_key")]
    public void Invalid_configs_name_the_key(string yaml, string key)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml));
        Assert.Contains($"'{key}'", error.Message);
    }

    [Fact]
    public void Synapses_top_level_registration_shared_secret_is_the_registration_shared_secret()
    {
        Assert.Equal("0123456789abcdef-top", ConfigLoader.Parse("registration_shared_secret: 0123456789abcdef-top\n").Registration.SharedSecret);
    }

    [Fact]
    public void Broken_yaml_is_a_config_error()
    {
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse("server_name: [unclosed\n"));
    }

    [Fact]
    public void Relative_paths_are_resolved_against_the_config_file()
    {
        var dir = Directory.CreateTempSubdirectory();
        var path = Path.Combine(dir.FullName, "hs.yaml");
        File.WriteAllText(path, "data_dir: ./state\n");
        Assert.Equal(Path.Combine(dir.FullName, "state"), ConfigLoader.LoadFile(path).DataDir);
        dir.Delete(recursive: true);
    }

    private static IEnumerable<string> AllKeys(Type type)
    {
        foreach (var property in type.GetProperties().Where(p => p.CanWrite))
        {
            var key = YamlDotNet.Serialization.NamingConventions.UnderscoredNamingConvention.Instance.Apply(property.Name);
            yield return key;
            var inner = property.PropertyType.IsGenericType ? property.PropertyType.GetGenericArguments()[0] : property.PropertyType;
            if (inner.Namespace == typeof(HomeserverConfig).Namespace && inner.IsClass)
                foreach (var nested in AllKeys(inner))
                    yield return nested;
        }
    }

    [Theory]
    [InlineData("{{ user.preferred_username }}", "Alice.Smith")]
    [InlineData("{{user.preferred_username|lower}}", "alice.smith")]
    [InlineData("{{ user.email | localpart_from_email | upper }}", "ALICE")]
    [InlineData("x-{{ user.address.locality }}-{{ user.missing }}", "x-Paris-")]
    [InlineData("{{ user.groups }}", "[\"staff\"]")]
    public void Claim_templates_render_as_synapse_jinja_templates_do(string template, string expected)
    {
        var claims = System.Text.Json.Nodes.JsonNode.Parse("""
            { "preferred_username": "Alice.Smith", "email": "alice@example.com", "address": { "locality": "Paris" }, "groups": ["staff"] }
            """)!.AsObject();
        Assert.Equal(expected, Matrix.Homeserver.Accounts.Sso.ClaimTemplate.Parse(template).Render(claims));
    }

    [Theory]
    [InlineData("{{ preferred_username }}")]
    [InlineData("{{ user.name | title }}")]
    [InlineData("{% if user.a %}x{% endif %}")]
    [InlineData("{{ user.name ")]
    public void Claim_templates_beyond_the_supported_part_are_refused(string template) =>
        Assert.Throws<FormatException>(() => Matrix.Homeserver.Accounts.Sso.ClaimTemplate.Parse(template));
}
