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
}
