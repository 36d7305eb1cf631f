using System.Runtime.InteropServices;
using Matrix.Federation.Crypto;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Hosting;

/// <summary>The command line: run the server, write a config, or create a user.</summary>
public static class Cli
{
    private const string Usage = """
        usage:
          Homeserver                          run a trial server: localhost on 127.0.0.1:8008, data in ./data, open registration
          Homeserver --config PATH            run with the YAML config at PATH (see config.sample.yaml)
          Homeserver --generate-config PATH   write a documented config file to PATH
          Homeserver register-user [--config PATH] --user NAME [--password PASSWORD] [--admin]
                                              create a user directly in the database (the password is read from
                                              standard input when not given)
          Homeserver routes [--config PATH]   list every endpoint this build serves (method and path template),
                                              e.g. to write a load balancer's routing rules
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return args switch
            {
                [] => await ServeAsync(ConfigLoader.TrialDefaults(), configPath: null),
                ["--config", var path] => await ServeAsync(ConfigLoader.LoadFile(path), path),
                ["--generate-config", var path] => GenerateConfig(path),
                ["register-user", .. var rest] => await RegisterUserAsync(rest),
                ["routes"] => PrintRoutes(ConfigLoader.TrialDefaults()),
                ["routes", "--config", var path] => PrintRoutes(ConfigLoader.LoadFile(path)),
                ["--help" or "-h"] => PrintUsage(0),
                _ => PrintUsage(2),
            };
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"invalid configuration: {e.Message}");
            return 1;
        }
    }

    private static int PrintUsage(int exitCode)
    {
        (exitCode == 0 ? Console.Out : Console.Error).WriteLine(Usage);
        return exitCode;
    }

    private static int GenerateConfig(string path)
    {
        if (File.Exists(path))
        {
            Console.Error.WriteLine($"{path} exists already; not overwriting it");
            return 1;
        }
        File.WriteAllText(path, ConfigLoader.SampleText());
        Console.WriteLine($"wrote {path}; edit it, then run with --config {path}");
        return 0;
    }

    /// <param name="configPath">the config file, read again on SIGHUP; null for the trial server</param>
    private static async Task<int> ServeAsync(HomeserverConfig config, string? configPath)
    {
        Directory.CreateDirectory(config.DataDir);
        Directory.CreateDirectory(config.EffectiveMediaStorePath);
        var app = ServerHost.Build(config);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Matrix.Homeserver");
        var signingKey = app.Services.GetRequiredService<Ed25519KeyPair>();
        await Migrations.ApplyAsync(app.Services.GetRequiredService<Database>(), logger, CancellationToken.None);

        logger.LogInformation("Server name {ServerName}, signing key {KeyId}, database {Engine}, role {Role} ({Instance})",
            config.ServerName, signingKey.KeyId, config.Database.Engine, config.Worker.Role, config.Worker.InstanceName);
        if (configPath is null)
            logger.LogWarning("Running without a config: a trial server for one person on loopback. Data is in {DataDir}", config.DataDir);
        if (config.Registration.Enabled)
            logger.LogWarning(config.Registration.RequiresToken
                ? "Registration is open to anyone holding a registration token (m.login.registration_token)"
                : "Registration is OPEN with m.login.dummy: anyone who can reach this server can create an account");
        app.Lifetime.ApplicationStopping.Register(app.Services.GetRequiredService<Sync.SyncNotifier>().WakeAllForShutdown);
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, signal =>
        {
            // Handled: the default action of SIGHUP ends the process.
            signal.Cancel = true;
            if (configPath is null)
                logger.LogWarning("SIGHUP: running without a config file, nothing to reload");
            else
                _ = app.Services.GetRequiredService<ConfigReload>().ReloadAsync(configPath);
        });
        await app.RunAsync();
        return 0;
    }

    /// <summary>Maps the endpoints without starting anything (no listener, no database, nothing written) and prints them.</summary>
    private static int PrintRoutes(HomeserverConfig config)
    {
        var app = ServerHost.Build(config);
        var routes = ((IEndpointRouteBuilder)app).DataSources.SelectMany(source => source.Endpoints).OfType<RouteEndpoint>()
            .SelectMany(endpoint => (endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"])
                .Select(method => $"{method} {endpoint.RoutePattern.RawText}"))
            .Distinct().Order(StringComparer.Ordinal);
        foreach (var route in routes)
            Console.WriteLine(route);
        return 0;
    }

    private static async Task<int> RegisterUserAsync(string[] args)
    {
        string? configPath = null, user = null, password = null;
        var admin = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--config" when i + 1 < args.Length: configPath = args[++i]; break;
                case "--user" when i + 1 < args.Length: user = args[++i]; break;
                case "--password" when i + 1 < args.Length: password = args[++i]; break;
                case "--admin": admin = true; break;
                default: return PrintUsage(2);
            }
        }
        if (user is null)
            return PrintUsage(2);
        password ??= Console.ReadLine();
        if (string.IsNullOrEmpty(password))
        {
            await Console.Error.WriteLineAsync("a password is required");
            return 2;
        }

        var config = configPath is null ? ConfigLoader.TrialDefaults() : ConfigLoader.LoadFile(configPath);
        var services = new ServiceCollection();
        services.AddLogging(logging => ServerHost.ConfigureLogging(logging, config));
        ServerHost.AddServices(services, config);
        await using var provider = services.BuildServiceProvider();
        var logger = provider.GetRequiredService<ILoggerFactory>().CreateLogger("Matrix.Homeserver");
        await Migrations.ApplyAsync(provider.GetRequiredService<Database>(), logger, CancellationToken.None);
        var accounts = provider.GetRequiredService<AccountService>();
        try
        {
            var userId = accounts.ValidateNewLocalpart(user.StartsWith('@') ? user[1..].Split(':')[0] : user);
            await accounts.RegisterAsync(userId, password, admin, null, null, inhibitLogin: true, wantsRefreshToken: false, null, CancellationToken.None);
            Console.WriteLine($"created {userId}{(admin ? " (server admin)" : "")}");
            return 0;
        }
        catch (Http.MatrixException e)
        {
            await Console.Error.WriteLineAsync($"{e.Errcode}: {e.Message}");
            return 1;
        }
    }
}
