using System.Net;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Admin;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Discovery;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Observability;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Hosting;

/// <summary>Builds the web host: services, listeners, middleware and every endpoint group.</summary>
public static class ServerHost
{
    public static WebApplication Build(HomeserverConfig config)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        ConfigureLogging(builder.Logging, config);
        var certificates = new TlsCertificates(config);
        builder.Services.AddSingleton(certificates);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = config.Limits.MaxJsonBodyBytes;
            foreach (var listener in config.Listeners)
                kestrel.Listen(IPAddress.Parse(listener.BindAddress), listener.Port, options =>
                {
                    if (listener.TlsCertificatePath is not null)
                        options.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
                        {
                            ServerCertificateSelector = (_, _) => certificates.For(listener),
                        });
                    options.UseBareErrorRewriting();
                });
        });
        // SIGTERM: long-polls are woken at once (SyncNotifier), so in-flight requests finish well within this.
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton<ConfigReload>();
        AddServices(builder.Services, config);

        var app = builder.Build();
        StartupReport.Log(app.Services, config);
        app.UseForwardedFor(config);
        app.UseRequestObservation();
        app.UseMatrixCors();
        app.UseMatrixErrors();
        app.UseListenerResources(config);
        Replication.WorkerRoutes.UseWorkerRoutes(app, config);
        foreach (var endpoints in app.Services.GetServices<IEndpoints>())
            endpoints.Map(app);
        return app;
    }

    public static void ConfigureLogging(ILoggingBuilder logging, HomeserverConfig config)
    {
        var settings = new LogSettings(config.Logging);
        logging.Services.AddSingleton(settings);
        logging.ClearProviders();
        logging.AddConsole(options => options.FormatterName = ConsoleLogFormatter.FormatterName);
        logging.AddConsoleFormatter<ConsoleLogFormatter, Microsoft.Extensions.Logging.Console.ConsoleFormatterOptions>();
        // Levels are decided per entry by the settings, which a reload changes in place.
        logging.SetMinimumLevel(LogLevel.Trace);
        logging.AddFilter((_, category, level) => settings.IsEnabled(category, level));
        // While any level of this category is enabled, hosting starts an Activity and a log scope for every request:
        // allocations a waiting long-poll holds, for request-start and -finish lines (Information) filtered out anyway.
        logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
    }

    public static void AddServices(IServiceCollection services, HomeserverConfig config)
    {
        services.AddSingleton(config);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<ScrapeTimeMetrics>();
        services.AddSingleton<IEndpoints, MetricsEndpoints>();
        services.AddSingleton<IEventListener, PersistedEventCounter>();
        services.AddSingleton(provider => new Database(config.Database, config.DataDir, provider.GetRequiredService<ServerMetrics>(),
            Replication.SharedEventStream.ApplicationName(config)));
        services.AddSingleton<JsonBody>();
        services.AddSingleton<RateLimiter>();
        services.AddSingleton<ApplicationServices.AppServiceRegistry>();
        services.AddSingleton<ApplicationServices.AppServiceClient>();
        services.AddSingleton<ApplicationServices.AppServiceOutbox>();
        services.AddSingleton<ApplicationServices.AppServiceQueries>();
        services.AddSingleton<ApplicationServices.ThirdPartyLookups>();
        services.AddSingleton<ApplicationServices.AppServiceSender>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<ApplicationServices.AppServiceSender>());
        services.AddHostedService(provider => provider.GetRequiredService<ApplicationServices.AppServiceSender>());
        services.AddSingleton<ApplicationServices.AppServiceDeviceData>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<ApplicationServices.AppServiceDeviceData>());
        services.AddSingleton<IEndpoints, ApplicationServices.AppServiceEndpoints>();
        services.AddSingleton<IEndpoints, ApplicationServices.ThirdPartyEndpoints>();

        services.AddSingleton<AccessTokenCache>();
        services.AddSingleton<Sync.SyncFilterCache>();
        services.AddSingleton<UserStore>();
        services.AddSingleton<DeviceStore>();
        services.AddSingleton<TokenStore>();
        services.AddSingleton<UiaStore>();
        services.AddSingleton<RegistrationTokenStore>();
        services.AddSingleton<ProfileStore>();
        services.AddSingleton<AccountDataStore>();
        services.AddSingleton<IgnoredUsers>();
        services.AddSingleton<InvitePermissions>();
        services.AddSingleton<StreamPositions>();
        services.AddSingleton<RecentEventIndex>();
        services.AddSingleton<RecentTransactionIds>();
        services.AddSingleton<MembershipCache>();
        services.AddSingleton<RecentRoomRows>();
        services.AddSingleton<FollowedRoomRows>();
        services.AddSingleton<UnansweredSends>();
        services.AddSingleton<RoomStore>();
        services.AddSingleton<StateGroupStore>();
        services.AddSingleton(provider => SigningKeyFile.LoadOrCreate(config.EffectiveSigningKeyPath,
            provider.GetRequiredService<ILoggerFactory>().CreateLogger("Matrix.Homeserver")));

        services.AddSingleton<PasswordHasher>();
        services.AddSingleton<AccountService>();
        services.AddSingleton<Accounts.Ldap.LdapPasswordChecker>();
        services.AddSingleton<ExternalIdStore>();
        services.AddSingleton<PasswordLogin>();
        services.AddSingleton<Authenticator>();
        services.AddSingleton<UserInteractiveAuth>();
        services.AddSingleton<ThreepidStore>();
        services.AddSingleton<ThreepidService>();
        services.AddSingleton<IdentityServerClient>();
        services.AddSingleton<Email.SmtpMailer>();
        services.AddSingleton<Email.ValidationMails>();
        services.AddSingleton<Email.EmailValidation>();
        services.AddSingleton<RegistrationTokenService>();
        services.AddSingleton<ProfileService>();
        services.AddSingleton(provider =>
        {
            var http = ServerServer.FederationHttp.CreateClient(config);
            var resolver = new Matrix.Federation.Transport.ServerNameResolver(http, provider.GetRequiredService<TimeProvider>(), config.Federation.PlainHttp);
            return new Matrix.Federation.Transport.FederationClient(http, resolver, config.ServerName,
                provider.GetRequiredService<Matrix.Federation.Crypto.Ed25519KeyPair>());
        });
        services.AddSingleton<ServerServer.ServerKeyService>();
        services.AddSingleton<ServerServer.FederationRequestAuth>();
        services.AddSingleton<ServerServer.FederationSender>();
        services.AddSingleton<RoomDirectory.AliasResolver>();
        services.AddSingleton<RoomDirectory.PublicRoomList>();
        services.AddSingleton<ServerServer.RemoteBackfill>();
        services.AddSingleton<ServerServer.MissingEvents>();
        services.AddSingleton<ServerServer.InboundEdus>();
        services.AddSingleton<ServerServer.InboundEduQueue>();
        services.AddHostedService(provider => provider.GetRequiredService<ServerServer.InboundEduQueue>());
        services.AddSingleton<ServerServer.RemoteMembership>();
        services.AddSingleton<RemoteInviteStore>();
        services.AddSingleton<ServerServer.FederationInvites>();
        services.AddSingleton<IEndpoints>(provider => provider.GetRequiredService<ServerServer.FederationInvites>());
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<ServerServer.FederationSender>());
        services.AddHostedService(provider => provider.GetRequiredService<ServerServer.FederationSender>());
        services.AddSingleton<EventCache>();
        services.AddSingleton<RoomLocks>();
        services.AddSingleton<SyncNotifier>();
        services.AddSingleton<EventSpine>();
        services.AddSingleton<MembershipService>();
        services.AddSingleton<GuestAccessRevocations>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<GuestAccessRevocations>());
        services.AddHostedService<GuestEviction>();
        services.AddSingleton<RestrictedJoins>();
        services.AddSingleton<RoomCreation>();
        services.AddSingleton<RoomReader>();
        services.AddSingleton<StateGroupCache>();
        services.AddSingleton<ErasedUsers>();
        services.AddSingleton<AccountDeactivation>();
        services.AddSingleton<SharedStateRows>();
        services.AddSingleton<SyncService>();
        services.AddSingleton<RoomMessages>();
        services.AddSingleton<LazyLoadedMembers>();
        services.AddSingleton<Sync.SlidingSync.RoomActivity>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<Sync.SlidingSync.RoomActivity>());
        services.AddSingleton<Sync.SlidingSync.SlidingSyncConnections>();
        services.AddSingleton<Sync.SlidingSync.SlidingRoomList>();
        services.AddSingleton<Sync.SlidingSync.SlidingRoomBuilder>();
        services.AddSingleton<Sync.SlidingSync.SlidingSyncExtensionBuilder>();
        services.AddSingleton<Sync.SlidingSync.SlidingSyncService>();
        services.AddSingleton<Receipts.ReceiptStore>();
        services.AddSingleton<Receipts.ReceiptService>();
        services.AddSingleton<Presence.PresenceStore>();
        services.AddSingleton<Presence.PresenceService>();
        services.AddSingleton<Presence.RoomJoins>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<Presence.RoomJoins>());
        services.AddHostedService<Presence.PresenceIntroductions>();
        services.AddSingleton<Receipts.TypingService>();
        services.AddHostedService<MaintenanceService>();
        services.AddSingleton<E2ee.DeviceKeyStore>();
        services.AddSingleton<E2ee.CrossSigningStore>();
        services.AddSingleton<E2ee.DeviceListStore>();
        services.AddSingleton<IEventListener, E2ee.DeviceListUnsubscriptions>();
        services.AddSingleton<E2ee.ToDeviceStore>();
        services.AddSingleton<E2ee.KeyBackupStore>();
        services.AddSingleton<E2ee.LocalKeyReader>();
        services.AddSingleton<E2ee.DeviceListService>();
        services.AddSingleton<E2ee.DeviceListResyncQueue>();
        services.AddHostedService<E2ee.DeviceListResyncer>();
        services.AddSingleton<E2ee.KeyService>();
        services.AddSingleton<E2ee.CrossSigningService>();
        services.AddSingleton<E2ee.ToDeviceService>();
        services.AddSingleton<E2ee.KeyBackupService>();

        services.AddSingleton<IEndpoints, DiscoveryEndpoints>();
        services.AddSingleton<IEndpoints, RegistrationEndpoints>();
        services.AddSingleton<IEndpoints, LoginEndpoints>();
        services.AddSingleton<Accounts.Sso.CasClient>();
        services.AddSingleton<Accounts.RecaptchaVerifier>();
        services.AddSingleton<IEndpoints, Accounts.RecaptchaFallback>();
        services.AddSingleton<Accounts.Sso.OidcProviders>();
        services.AddSingleton<Accounts.Sso.SsoSessionStore>();
        services.AddSingleton<Accounts.Sso.SsoCompletion>();
        services.AddSingleton<Accounts.Sso.OidcSignIn>();
        services.AddSingleton<IEndpoints>(provider => provider.GetRequiredService<Accounts.Sso.OidcSignIn>());
        services.AddSingleton<Accounts.Sso.SsoEndpoints>();
        services.AddSingleton<IEndpoints>(provider => provider.GetRequiredService<Accounts.Sso.SsoEndpoints>());
        Accounts.OAuth.OAuthServices.AddOAuth(services, config);
        services.AddSingleton<ExternalAccounts>();
        services.AddSingleton<IEndpoints, DeviceEndpoints>();
        services.AddSingleton<IEndpoints, AccountManagementEndpoints>();
        services.AddSingleton<IEndpoints, OpenIdEndpoints>();
        services.AddSingleton<IEndpoints, ProfileEndpoints>();
        services.AddSingleton<IEndpoints, AccountDataEndpoints>();
        services.AddSingleton<RoomTags>();
        services.AddSingleton<IEndpoints, TagEndpoints>();
        services.AddSingleton<IEndpoints, SharedSecretRegistration>();
        services.AddSingleton<IEndpoints, RegistrationTokenAdminEndpoints>();
        services.AddSingleton<IEndpoints, RoomEndpoints>();
        services.AddSingleton<IEndpoints, EventEndpoints>();
        services.AddSingleton<IEndpoints, SyncEndpoints>();
        services.AddSingleton<IEndpoints, LegacySyncEndpoints>();
        services.AddSingleton<IEndpoints, Sync.SlidingSync.SlidingSyncEndpoints>();
        services.AddSingleton<IEndpoints, FilterEndpoints>();
        services.AddSingleton<IEndpoints, TimestampEndpoints>();
        services.AddSingleton<RoomDirectory.RoomPeeking>();
        services.AddSingleton<IEndpoints, RoomDirectory.SpaceHierarchy>();
        services.AddSingleton<IEndpoints, RoomDirectory.RoomSummaryEndpoints>();
        services.AddSingleton<IEndpoints, Receipts.ReceiptEndpoints>();
        services.AddSingleton<IEndpoints, RoomDirectory.DirectoryEndpoints>();
        services.AddSingleton<IEndpoints, Reporting.ReportEndpoints>();
        services.AddSingleton<IEndpoints, MutualRoomsEndpoints>();
        services.AddSingleton<IEndpoints, AccountModerationEndpoints>();
        services.AddAdminApi();
        services.AddSingleton<RoomUpgrades>();
        services.AddSingleton<RoomSuccession>();
        services.AddSingleton<IEndpoints, RoomUpgradeEndpoints>();
        services.AddSingleton<IEndpoints, WhoisEndpoints>();
        services.AddSingleton<IEndpoints, ThirdPartyIdEndpoints>();
        services.AddSingleton<IEndpoints, Voip.TurnEndpoints>();
        services.AddSingleton<Search.SearchStore>();
        services.AddSingleton<IEventListener, Search.SearchIndexer>();
        services.AddSingleton<IEndpoints, Search.SearchEndpoints>();
        services.AddSingleton<Relations.RelationStore>();
        services.AddSingleton<IEventListener, Relations.RelationsWriter>();
        services.AddSingleton<Relations.RelationBundler>();
        services.AddSingleton<IEndpoints, Relations.RelationsEndpoints>();
        services.AddSingleton<Push.PushRuleService>();
        services.AddSingleton<Push.UnreadCountCache>();
        services.AddSingleton<Push.PushActionStore>();
        services.AddSingleton<Push.PushActionsWriter>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<Push.PushActionsWriter>());
        services.AddSingleton<Push.PusherStore>();
        services.AddSingleton<Push.PushSender>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<Push.PushSender>());
        services.AddHostedService(provider => provider.GetRequiredService<Push.PushSender>());
        // The last listener (those before it may read the event's tree): it drops the tree of the messages it serialises.
        services.AddSingleton<Sync.SharedClientEvents>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<Sync.SharedClientEvents>());
        services.AddSingleton<IEndpoints, Push.PusherEndpoints>();
        services.AddSingleton<IEndpoints, Push.NotificationsEndpoints>();
        services.AddSingleton<IEndpoints, Push.PushRulesEndpoints>();
        services.AddSingleton<IEndpoints, Presence.PresenceEndpoints>();
        services.AddSingleton<IEndpoints, UserDirectory.UserDirectoryEndpoints>();
        services.AddSingleton<IEndpoints, E2ee.KeysEndpoints>();
        services.AddSingleton<IEndpoints, E2ee.ToDeviceEndpoints>();
        services.AddSingleton<IEndpoints, E2ee.KeyBackupEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.FederationKeyEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.ServerKeyEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.FederationQueryEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.TransactionEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.FederationMembershipEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.FederationReadEndpoints>();
        services.AddSingleton<IEndpoints, ServerServer.FederationPublicRoomEndpoints>();
        services.AddSingleton<ThirdPartyInvites>();
        services.AddSingleton<IEndpoints, ServerServer.ThirdPartyInviteEndpoints>();
        services.AddSingleton<GuardedHttp>();
        services.AddSingleton<Media.IMediaStorage>(provider => config.Media.Storage == "s3"
            ? new Media.S3MediaStorage(config.Media.S3, provider.GetRequiredService<ILoggerFactory>().CreateLogger("Matrix.Homeserver.Media"))
            : new Media.LocalMediaStorage(config.EffectiveMediaStorePath));
        services.AddSingleton<Media.MediaStaging>();
        services.AddSingleton<Media.MediaStore>();
        services.AddSingleton<Media.RemoteMediaFetcher>();
        services.AddSingleton<Media.MediaRepository>();
        services.AddSingleton<Media.ThumbnailService>();
        services.AddSingleton<Media.UrlPreviewService>();
        services.AddSingleton<IEndpoints, Media.MediaEndpoints>();
        services.AddSingleton<IEndpoints, Media.FederationMediaEndpoints>();
        services.AddSingleton<ServerServer.ServerRoomAccess>();
        AddReplication(services, config);
        services.AddSingleton<IdleMemoryTrimmer>();
        services.AddHostedService(provider => provider.GetRequiredService<IdleMemoryTrimmer>());
        services.AddSingleton<IExpiringCache>(provider => provider.GetRequiredService<EventCache>());
        services.AddSingleton<IExpiringCache>(provider => provider.GetRequiredService<StateGroupCache>());
        services.AddSingleton<IExpiringCache>(provider => provider.GetRequiredService<AccessTokenCache>());
        services.AddSingleton<IExpiringCache>(provider => provider.GetRequiredService<MembershipCache>());
        services.AddSingleton<IExpiringCache>(provider => provider.GetRequiredService<E2ee.DeviceKeyStore>());
        services.AddSingleton<CacheExpiry>();
        services.AddHostedService(provider => provider.GetRequiredService<CacheExpiry>());
    }

    /// <summary>A deployment of several processes (README "Scaling out"): what links them, and what only the main process runs.</summary>
    private static void AddReplication(IServiceCollection services, HomeserverConfig config)
    {
        services.AddSingleton<Replication.ReplicationBus>();
        services.AddSingleton<Replication.PositionAnnouncer>();
        services.AddSingleton<Replication.ReplicationInbox>();
        services.AddSingleton<Replication.ReplicationPositionStore>();
        var cleanups = services
            .Where(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.IsSubclassOf(typeof(PeriodicCleanup)) == true).ToList();
        if (!config.Worker.IsMain)
        {
            // Senders and resyncs write: the main process runs them, the senders and pushers their sending (clean-ups below).
            foreach (var background in services.Where(d => d.ServiceType == typeof(IHostedService)).ToList())
                services.Remove(background);
            if (config.Worker.Role == WorkerConfig.FederationSenderRole)
                services.AddHostedService(provider => provider.GetRequiredService<ServerServer.FederationSender>());
            if (config.Worker.Role == WorkerConfig.PusherRole)
                services.AddHostedService(provider => provider.GetRequiredService<Push.PushSender>());
        // The last listener (those before it may read the event's tree): it drops the tree of the messages it serialises.
        services.AddSingleton<Sync.SharedClientEvents>();
        services.AddSingleton<IEventListener>(provider => provider.GetRequiredService<Sync.SharedClientEvents>());
            if (config.Worker.Role == WorkerConfig.AppServiceSenderRole)
                services.AddHostedService(provider => provider.GetRequiredService<ApplicationServices.AppServiceSender>());
            // What follows from the events an event writer writes is done where they are written.
            if (config.Worker.Role == WorkerConfig.EventWriterRole)
            {
                services.AddHostedService<GuestEviction>();
                services.AddHostedService<Presence.PresenceIntroductions>();
            }
        }
        // The clean-ups run in one process: the background worker when there is one, else the main process.
        foreach (var cleanup in cleanups)
        {
            services.Remove(cleanup);
            if (config.Worker.RunsBackgroundTasks)
                services.Add(cleanup);
        }
        if (config.Worker.Replicates)
        {
            // First of all: nothing may take an event position before the events stream is shared.
            if (config.Worker.SharesEvents)
                services.Insert(0, ServiceDescriptor.Singleton<IHostedService, Replication.SharedEventStream>());
            if (config.Worker.IsMain)
                services.AddHostedService<Replication.MainReplication>();

            else
                services.AddHostedService<Replication.WorkerReplication>();
        }
    }
}
