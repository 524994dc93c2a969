#Changes VMware SVGA 3D to NVidia GeoFarce G210
Set-ItemProperty -Path "HKLM:\SYSTEM\ControlSet001\Enum\PCI\VEN_15AD&DEV_0405&SUBSYS_040515AD&REV_00\3&61aaa01&0&78" -Name "DeviceDesc" -Value "NVidia GeoFarce G210"
#Changes VMware VMCI Bus Device to Indian Short Bus Bhindu Rider
Set-ItemProperty -Path "HKLM:\SYSTEM\ControlSet001\Enum\PCI\VEN_15AD&DEV_0740&SUBSYS_074015AD&REV_10\3&61aaa01&0&3F" -Name "DeviceDesc" -Value "Indian Short Bus Bhindu Rider"
