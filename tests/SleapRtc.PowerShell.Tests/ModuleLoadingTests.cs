using System.Runtime.Loader;
using System.Text.RegularExpressions;

namespace SleapRtc.PowerShell.Tests;

public sealed class ModuleLoadingTests
{
    [Fact]
    public void Manifest_version_equals_the_one_version_in_Directory_Build_props()
    {
        var props = File.ReadAllText(Path.Combine(RepoPaths.Root, "Directory.Build.props"));
        var version = Regex.Match(props, "<Version>([^<]+)</Version>").Groups[1].Value;
        using var ps = new HostedPowerShell(importModule: false);
        var moduleVersion = ps.Run($"(Import-Module '{RepoPaths.Manifest}' -PassThru).Version.ToString()").ThrowOnError().Output.Single().BaseObject;
        Assert.Equal(version, moduleVersion);
    }

    /// <summary>
    /// SQLite's package brings natives for every RID NuGet knows (s390x, mips64, wasm, ...); the module ships those of the
    /// platforms PowerShell runs on, all of them, and nothing else: in bin/deps (PowerShell 7), bin/desktop (Windows
    /// PowerShell 5.1, win-* only) and, once ./build.ps1 -Task Package has run, the versioned package folder.
    /// </summary>
    [Fact]
    public void Module_folders_carry_sqlite_natives_only_for_the_platforms_PowerShell_runs_on()
    {
        string[] powerShellPlatforms = { "win-x64", "win-x86", "win-arm64", "linux-x64", "linux-arm64", "linux-arm", "linux-musl-x64", "linux-musl-arm64", "osx-x64", "osx-arm64" };
        var csproj = File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "SleapRtc", "SleapRtc.csproj"));
        Assert.Equal(string.Join(";", powerShellPlatforms), Regex.Match(csproj, "<ModuleNativeRuntimes>([^<]+)</ModuleNativeRuntimes>").Groups[1].Value);

        var moduleRoots = new List<string> { RepoPaths.Root };
        var props = File.ReadAllText(Path.Combine(RepoPaths.Root, "Directory.Build.props"));
        var package = Path.Combine(RepoPaths.Root, "out", "SleapRtc", Regex.Match(props, "<Version>([^<]+)</Version>").Groups[1].Value);
        if (Directory.Exists(package)) moduleRoots.Add(package);
        foreach (var root in moduleRoots)
        {
            var deps = Path.Combine(root, "bin", "deps", "runtimes");
            Assert.Equal(powerShellPlatforms.OrderBy(r => r, StringComparer.Ordinal), RuntimeFolders(deps));
            Assert.All(powerShellPlatforms, rid => Assert.NotEmpty(Directory.GetFiles(Path.Combine(deps, rid, "native"))));
            var desktop = Path.Combine(root, "bin", "desktop", "runtimes");
            Assert.Equal(powerShellPlatforms.Where(r => r.StartsWith("win-", StringComparison.Ordinal)).OrderBy(r => r, StringComparer.Ordinal), RuntimeFolders(desktop));
            // No native file anywhere else in the module (say, a runtimes folder copied whole).
            var natives = Directory.GetFiles(Path.Combine(root, "bin"), "*", SearchOption.AllDirectories)
                .Where(f => f.Contains(Path.DirectorySeparatorChar + "runtimes" + Path.DirectorySeparatorChar, StringComparison.Ordinal));
            Assert.All(natives, f => Assert.Contains(Path.GetRelativePath(Path.Combine(root, "bin"), f).Split(Path.DirectorySeparatorChar)[2], powerShellPlatforms));
        }
    }

    private static IEnumerable<string> RuntimeFolders(string runtimes) =>
        Directory.GetDirectories(runtimes).Select(Path.GetFileName).OrderBy(r => r, StringComparer.Ordinal)!;

    [Fact]
    public void Import_exports_exactly_the_manifest_cmdlets_and_nothing_else()
    {
        using var ps = new HostedPowerShell();
        var commands = ps.Run("(Get-Module SleapRtc).ExportedCommands.Keys | ForEach-Object { $_ }").ThrowOnError()
            .Output.Select(o => o.ToString()).OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.Equal(ModuleCommands.All, commands);
        var functions = ps.Run("(Get-Module SleapRtc).ExportedFunctions.Count").ThrowOnError().Output.Single().BaseObject;
        Assert.Equal(0, functions);
    }

    [Fact]
    public void Libraries_load_into_the_private_context_and_public_types_into_the_default_one()
    {
        using var ps = new HostedPowerShell();
        // Touch a library type through a cmdlet so its assembly is loaded.
        ps.Run("ConvertTo-SleapSessionString -RoomId r -Token t -PeerId p").ThrowOnError();
        var assemblies = AppDomain.CurrentDomain.GetAssemblies();
        var protocol = assemblies.Single(a => a.GetName().Name == "SleapRtc.Protocol");
        Assert.Equal("SleapRtc", AssemblyLoadContext.GetLoadContext(protocol)?.Name);
        Assert.StartsWith(Path.Combine(RepoPaths.Root, "bin", "deps"), protocol.Location);
        // PowerShell 7 runs the net8.0 builds, not the netstandard2.0 ones meant for Windows PowerShell 5.1.
        Assert.Contains(protocol.GetCustomAttributes(typeof(System.Runtime.Versioning.TargetFrameworkAttribute), false).Cast<System.Runtime.Versioning.TargetFrameworkAttribute>(), a => a.FrameworkName == ".NETCoreApp,Version=v8.0");

        var model = assemblies.Single(a => a.GetName().Name == "SleapRtc.Model");
        Assert.Same(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(model));
        var cmdlets = assemblies.Single(a => a.GetName().Name == "SleapRtc");
        Assert.Same(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(cmdlets));

        // Type literals of the public model resolve in scripts.
        var typeName = ps.Run("[SleapRtc.WorkerInfo].FullName").ThrowOnError().Output.Single().BaseObject;
        Assert.Equal("SleapRtc.WorkerInfo", typeName);
    }

    [Fact]
    public void Every_method_of_the_netstandard_cmdlet_assembly_binds_to_the_net8_libraries()
    {
        // The cmdlet assembly is compiled against the netstandard2.0 builds but runs against the net8.0 ones here; a
        // member whose signature differs between the two (an `init` setter, a polyfilled type) only fails when the
        // JIT first compiles a caller. Compiling every method now finds such a break without running each path.
        using var ps = new HostedPowerShell();
        ps.Run("ConvertTo-SleapSessionString -RoomId r -Token t -PeerId p").ThrowOnError();
        var cmdlets = AppDomain.CurrentDomain.GetAssemblies().Single(a => a.GetName().Name == "SleapRtc");
        Assert.Contains(cmdlets.GetCustomAttributes(typeof(System.Runtime.Versioning.TargetFrameworkAttribute), false)
            .Cast<System.Runtime.Versioning.TargetFrameworkAttribute>(), a => a.FrameworkName == ".NETStandard,Version=v2.0");

        var failures = new List<string>();
        var compiled = 0;
        const System.Reflection.BindingFlags Declared = System.Reflection.BindingFlags.DeclaredOnly | System.Reflection.BindingFlags.Instance
            | System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        foreach (var type in cmdlets.GetTypes().Where(t => !t.ContainsGenericParameters))
        {
            foreach (var method in type.GetMethods(Declared).Cast<System.Reflection.MethodBase>().Concat(type.GetConstructors(Declared)))
            {
                if (method.IsAbstract || method.ContainsGenericParameters || method.GetMethodBody() is null) continue;
                try
                {
                    System.Runtime.CompilerServices.RuntimeHelpers.PrepareMethod(method.MethodHandle);
                    compiled++;
                }
                catch (Exception e) when (e is MissingMemberException or TypeLoadException or FileNotFoundException or BadImageFormatException)
                {
                    failures.Add($"{type.FullName}.{method.Name}: {e.Message}");
                }
            }
        }
        Assert.Empty(failures);
        Assert.True(compiled > 200, $"only {compiled} methods compiled");
    }

    [Fact]
    public void The_manifest_declares_both_editions_and_the_framework_version_5_1_needs()
    {
        using var ps = new HostedPowerShell(importModule: false);
        var manifest = ps.Run($"Test-ModuleManifest -Path '{RepoPaths.Manifest}'").ThrowOnError().Output.Single();
        var editions = ((System.Collections.IEnumerable)manifest.Prop("CompatiblePSEditions")!).Cast<object>().Select(e => e.ToString()).ToList();
        Assert.Equal(new[] { "Desktop", "Core" }, editions);
        Assert.Equal(new Version(5, 1), manifest.Prop("PowerShellVersion"));
        Assert.Equal(new Version(4, 7, 2), manifest.Prop("DotNetFrameworkVersion"));
    }

    /// <summary>
    /// Windows PowerShell 5.1 finds an assembly in .NET Framework or, through the module's resolver, in bin/desktop
    /// (bin for the public model): every reference of every assembly there must be one or the other, or the first
    /// cmdlet that touches it fails on a user's machine. The framework's list is its 4.7.2 reference assemblies.
    /// </summary>
    [Fact]
    public void Every_assembly_the_desktop_libraries_reference_is_in_the_framework_or_shipped()
    {
        var framework = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
            "microsoft.netframework.referenceassemblies.net472", "1.0.3", "build", ".NETFramework", "v4.7.2");
        Assert.True(Directory.Exists(framework), "the .NET Framework reference assemblies are restored with tests/SleapRtc.Desktop.Smoke");
        var provided = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "mscorlib" };
        foreach (var file in Directory.GetFiles(framework, "*.dll").Concat(Directory.GetFiles(Path.Combine(framework, "Facades"), "*.dll")))
            provided.Add(Path.GetFileNameWithoutExtension(file));

        var desktop = Path.Combine(RepoPaths.Root, "bin", "desktop");
        var shipped = Directory.GetFiles(desktop, "*.dll").Append(Path.Combine(RepoPaths.Root, "bin", "SleapRtc.dll"))
            .Append(Path.Combine(RepoPaths.Root, "bin", "SleapRtc.Model.dll")).ToList();
        var names = new HashSet<string>(shipped.Select(Path.GetFileNameWithoutExtension)!, StringComparer.OrdinalIgnoreCase);
        var missing = new List<string>();
        foreach (var assembly in shipped)
        {
            using var stream = File.OpenRead(assembly);
            using var pe = new System.Reflection.PortableExecutable.PEReader(stream);
            var metadata = System.Reflection.Metadata.PEReaderExtensions.GetMetadataReader(pe);
            foreach (var handle in metadata.AssemblyReferences)
            {
                var name = metadata.GetString(metadata.GetAssemblyReference(handle).Name);
                // The host provides System.Management.Automation; everything else must be found.
                if (name == "System.Management.Automation" || provided.Contains(name) || names.Contains(name)) continue;
                missing.Add($"{Path.GetFileName(assembly)} -> {name}");
            }
        }
        Assert.Empty(missing);
        Assert.Contains("System.Text.Json", names);
        Assert.True(File.Exists(Path.Combine(desktop, "runtimes", "win-x64", "native", "e_sqlite3.dll")), "SQLite's Windows native library is not shipped");
    }
}
