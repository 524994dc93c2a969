# guestcompat capture for the Windows side of a VM (PowerShell 5.1+, Windows 8 / Server 2012 and later).
#
# Run it inside the source VM (an elevated prompt is not needed), then give the file to guestcompat:
#   powershell -NoProfile -ExecutionPolicy Bypass -File gc-capture.ps1 -Output capture.txt
#   guestcompat windows capture.txt --against <fingerprint.json>      (or: guestcompat import capture capture.txt)
#
# It only reads: every PCI device Windows knows (present and ghost ones), with its hardware and compatible ids,
# service, location and parent; the root bridge; the BIOS, system and OS strings activation looks at; the NICs'
# MAC addresses. Nothing is installed or changed. The output is plain UTF-8 text in the forms
# profiles/importers/windows_text.py reads (Format-List records, "Key : Value").

param([string]$Output = "gc-capture.txt")

$ErrorActionPreference = "Continue"
$lines = New-Object System.Collections.Generic.List[string]

function Add-Record([System.Collections.IDictionary]$record) {
    foreach ($key in $record.Keys) {
        $value = $record[$key]
        if ($value -is [array]) { $value = "{" + ($value -join ", ") + "}" }
        $lines.Add(("{0,-20} : {1}" -f $key, $value))
    }
    $lines.Add("")
}

$lines.Add("# guestcompat Windows capture, $(Get-Date -Format o)")
$lines.Add("")

# identity: what systeminfo and wmic would print, from CIM
$os = Get-CimInstance Win32_OperatingSystem
$bios = Get-CimInstance Win32_BIOS
$product = Get-CimInstance Win32_ComputerSystemProduct
$system = Get-CimInstance Win32_ComputerSystem
$lines.Add("OS Name:                   $($os.Caption)")
$lines.Add("OS Version:                $($os.Version) Build $($os.BuildNumber)")
$lines.Add("System Manufacturer:       $($system.Manufacturer)")
$lines.Add("System Model:              $($system.Model)")
$lines.Add("")
Add-Record ([ordered]@{
    SMBIOSBIOSVersion  = $bios.SMBIOSBIOSVersion
    Manufacturer       = $bios.Manufacturer
    ReleaseDate        = if ($bios.ReleaseDate) { $bios.ReleaseDate.ToString("yyyyMMdd") + "000000.000000+000" } else { "" }
    SMBIOSMajorVersion = $bios.SMBIOSMajorVersion
    SMBIOSMinorVersion = $bios.SMBIOSMinorVersion
})
Add-Record ([ordered]@{
    IdentifyingNumber = $product.IdentifyingNumber
    UUID              = $product.UUID
    Vendor            = $product.Vendor
})

# the root bridge (its instance path is the parent of every bus-0 device)
foreach ($root in Get-PnpDevice -InstanceId 'ACPI\PNP0A0*' -ErrorAction SilentlyContinue) {
    Add-Record ([ordered]@{ InstanceId = $root.InstanceId; FriendlyName = $root.FriendlyName })
}

# every PCI function Windows has an Enum key for: present ones and ghosts (Present : False)
$keys = 'DEVPKEY_Device_HardwareIds', 'DEVPKEY_Device_CompatibleIds', 'DEVPKEY_Device_Service',
        'DEVPKEY_Device_LocationInfo', 'DEVPKEY_Device_LocationPaths', 'DEVPKEY_Device_Parent'
foreach ($dev in Get-PnpDevice -ErrorAction SilentlyContinue | Where-Object { $_.InstanceId -like 'PCI\*' }) {
    $props = @{}
    foreach ($p in Get-PnpDeviceProperty -InstanceId $dev.InstanceId -KeyName $keys -ErrorAction SilentlyContinue) {
        $props[$p.KeyName] = $p.Data
    }
    Add-Record ([ordered]@{
        InstanceId          = $dev.InstanceId
        FriendlyName        = $dev.FriendlyName
        Present             = $dev.Present
        Status              = $dev.Status
        Service             = $props['DEVPKEY_Device_Service']
        HardwareID          = @($props['DEVPKEY_Device_HardwareIds'])
        CompatibleID        = @($props['DEVPKEY_Device_CompatibleIds'])
        LocationInformation = $props['DEVPKEY_Device_LocationInfo']
        LocationPaths       = @($props['DEVPKEY_Device_LocationPaths'])
        Parent              = $props['DEVPKEY_Device_Parent']
    })
}

# NICs: name, MAC and the PCI function they sit on
foreach ($nic in Get-NetAdapter -Physical -ErrorAction SilentlyContinue) {
    Add-Record ([ordered]@{
        Name                 = $nic.Name
        InterfaceDescription = $nic.InterfaceDescription
        MacAddress           = $nic.MacAddress
        PnPDeviceID          = $nic.PnPDeviceID
    })
}

[System.IO.File]::WriteAllLines((Join-Path (Get-Location) $Output), $lines, (New-Object System.Text.UTF8Encoding($false)))
Write-Host "wrote $Output ($($lines.Count) lines): give it to guestcompat (windows, import capture, replay)"
