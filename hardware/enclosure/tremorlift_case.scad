// tremorlift case: base with strap loops, and a screwed lid that carries the IMU axis marks.
//
// Fits a Seeed XIAO ESP32S3/C3, one IMU breakout (GY-521 or an ICM-42688-P board),
// a 500 mAh LiPo up to 36 x 30 x 6 mm, a 10 mm coin motor and a mini slide switch.
// Units: mm. Print base and lid flat (as laid out by part = "all"), PETG or PLA,
// 0.2 mm layers, 3 walls, no supports.
//
//   openscad -o case.stl tremorlift_case.scad                 (both parts, print layout)
//   openscad -o base.stl -D 'part="base"' tremorlift_case.scad
//   openscad -o lid.stl  -D 'part="lid"'  tremorlift_case.scad
//
// Axes (the same as the IMU's once it is mounted as the floor arrow shows):
//   +X along the case, from the USB-C end to the IMU end;
//   +Y across the case, towards the slide-switch side (seen from above with +X to the
//      right, +Y points away from you);
//   +Z out of the lid, away from the skin.
// The lid is engraved with X and Y arrows and a Z dot-in-circle (Z out of the lid).

part = "all";        // "base", "lid" or "all"
show_axes = true;    // the axis marks on the lid (a test renders with and without)

/* [Cavity] */
cavity = [48, 33, 14.5];   // inside of the base: length (X), width (Y), height (Z)
wall = 2.0;
floor_t = 2.0;
lid_t = 2.0;
corner_r = 3.0;

/* [Parts inside] */
xiao = [21.0, 17.8];      // XIAO footprint (USB-C on the -X edge)
xiao_rail_h = 1.6;        // keeps the battery pads on its back clear of the floor
usb_c = [9.6, 4.2];       // opening for the USB-C plug (width Y, height Z)
usb_c_z = floor_t + xiao_rail_h + 1.2 + 1.6;   // centre: rail + PCB + half the receptacle
imu = [22.0, 17.0];       // IMU breakout pocket (GY-521 is 21 x 16)
imu_rim_h = 1.2;
ledge_z = floor_t + 6.5;  // the cell rests on ledges above the boards
ledge_w = 3.0;
lid_lip_h = 1.5;
switch_slot = [7.0, 3.6]; // SS12D00G3 actuator window (Y, Z)
motor_d = 10.4;           // coin motor, glued in a ring on the floor, far from the IMU
motor_xy = [-5, 8.5];
led_hole_d = 3.2;         // 3 mm LED (C3 and DevKitC builds) or light from the XIAO's LED

/* [Screws and strap] */
screw_pilot_d = 1.7;      // M2 self-tapping
screw_clear_d = 2.3;
screw_head_d = 4.0;
boss_d = 5.0;
strap_w = 26.0;           // for a 25 mm strap
strap_t = 3.4;
loop_bar = 1.8;           // outer bar of each strap loop
loop_h = 5.0;

$fn = 40;
eps = 0.01;

outer = [cavity.x + 2 * wall, cavity.y + 2 * wall, floor_t + cavity.z];
boss_xy = [for (sx = [-1, 1], sy = [-1, 1]) [sx * (cavity.x / 2 - 0.5), sy * (cavity.y / 2 - 0.5)]];
xiao_x = -cavity.x / 2 + xiao.x / 2 + 0.5;        // XIAO against the -X wall
xiao_y = -cavity.y / 2 + xiao.y / 2 + 1.0;
imu_x = cavity.x / 2 - imu.x / 2 - 2.0;           // IMU at the +X end, flat on the floor
imu_y = -cavity.y / 2 + imu.y / 2 + 1.0;

module rounded_box(size, r) {
    linear_extrude(size.z)
        offset(r = r) square([size.x - 2 * r, size.y - 2 * r], center = true);
}

module strap_loop(side) {
    // A block on the +-Y wall with a vertical slot: the strap runs under the case,
    // up through the slot, over the outer bar and down again (NATO style).
    depth = strap_t + loop_bar + 0.6;
    translate([0, side * (outer.y / 2 + depth / 2 - eps), 0])
        difference() {
            translate([-(strap_w + 6) / 2, -depth / 2, 0]) cube([strap_w + 6, depth, loop_h]);
            translate([-strap_w / 2, -side * depth / 2 + (side > 0 ? 0.6 : -0.6 - strap_t), -eps])
                cube([strap_w, strap_t, loop_h + 2 * eps]);
        }
}

module arrow(length, label) {
    // An engraving stroke with a head, drawn along +X from the origin.
    w = 1.0;
    translate([0, -w / 2]) square([length - 2.5, w]);
    translate([length, 0]) polygon([[0, 0], [-3, 2], [-3, -2]]);
    translate([length + 2.5, -2.5]) letter(label);
}

module letter(c) {
    // Stroke letters, so no font has to be installed where the STL is rendered.
    s = 5; w = 0.9;
    module bar(a, b) hull() { translate(a) circle(d = w, $fn = 12); translate(b) circle(d = w, $fn = 12); }
    if (c == "X") { bar([0, 0], [s * 0.7, s]); bar([0, s], [s * 0.7, 0]); }
    if (c == "Y") { bar([0, s], [s * 0.35, s / 2]); bar([s * 0.7, s], [s * 0.35, s / 2]); bar([s * 0.35, s / 2], [s * 0.35, 0]); }
    if (c == "Z") { bar([0, s], [s * 0.7, s]); bar([s * 0.7, s], [0, 0]); bar([0, 0], [s * 0.7, 0]); }
}

module axis_marks() {
    // 0.6 mm deep in the lid's top face. Z: a dot in a circle = arrow out of the lid.
    translate([-outer.x / 2 + 8, -outer.y / 2 + 8]) {
        arrow(22, "X");
        rotate(90) arrow(14, "");
        translate([-2.5, 17.5]) letter("Y");
        translate([12, 12]) {
            difference() { circle(d = 7); circle(d = 5.2); }
            circle(d = 1.8);
            translate([5, -2.5]) letter("Z");
        }
    }
}

module base() {
    difference() {
        union() {
            rounded_box(outer, corner_r + wall);
            strap_loop(1);
            strap_loop(-1);
        }
        // Cavity, with the corners left solid for the screw bosses.
        difference() {
            translate([0, 0, floor_t]) rounded_box([cavity.x, cavity.y, cavity.z + eps], corner_r);
            for (p = boss_xy) translate([p.x, p.y, 0]) cylinder(d = boss_d, h = outer.z);
        }
        for (p = boss_xy) translate([p.x, p.y, floor_t]) cylinder(d = screw_pilot_d, h = outer.z);
        // USB-C window in the -X wall, in front of the XIAO.
        translate([-outer.x / 2 - eps, xiao_y - usb_c.x / 2, usb_c_z - usb_c.y / 2])
            cube([wall + 2 * eps, usb_c.x, usb_c.y]);
        // Slide-switch window in the -X wall, beside the XIAO.
        translate([-outer.x / 2 - eps, cavity.y / 2 - 4 - switch_slot.x, ledge_z - switch_slot.y - 0.5])
            cube([wall + 2 * eps, switch_slot.x, switch_slot.y]);
        // Arrow on the floor of the IMU pocket: the breakout's X arrow points the same way.
        translate([imu_x, imu_y, floor_t - 0.5]) linear_extrude(0.5 + eps)
            translate([-7, 0]) arrow(10, "X");
    }
    // XIAO rails: two strips under the board's long edges.
    for (dy = [-1, 1])
        translate([xiao_x - xiao.x / 2 + 3, xiao_y + dy * (xiao.y / 2 - 1.5) - 1, floor_t - eps])
            cube([xiao.x - 3, 2, xiao_rail_h]);
    // IMU pocket: a low rim so the breakout sits square to the case axes (glue it flat).
    translate([imu_x, imu_y, floor_t - eps])
        difference() {
            linear_extrude(imu_rim_h) offset(delta = 1.2) square([imu.x + 0.4, imu.y + 0.4], center = true);
            translate([0, 0, -eps]) linear_extrude(imu_rim_h + 2 * eps) square([imu.x + 0.4, imu.y + 0.4], center = true);
        }
    // Ring that holds the coin motor on the floor, diagonally away from the IMU.
    translate([motor_xy.x, motor_xy.y, floor_t - eps])
        difference() { cylinder(d = motor_d + 2.4, h = 1.2); translate([0, 0, -eps]) cylinder(d = motor_d, h = 2); }
    // Ledges along the long walls that carry the cell above the boards, each with a
    // 45-degree wedge under it so it prints without support.
    for (sy = [-1, 1])
        translate([-cavity.x / 2 + boss_d, sy * (cavity.y / 2), 0])
            hull() {
                translate([0, sy > 0 ? -ledge_w : 0, ledge_z - 1.2]) cube([cavity.x - 2 * boss_d, ledge_w, 1.2]);
                translate([0, sy > 0 ? -eps : 0, ledge_z - 1.2 - ledge_w]) cube([cavity.x - 2 * boss_d, eps, ledge_w]);
            }
}

module lid() {
    difference() {
        union() {
            rounded_box([outer.x, outer.y, lid_t], corner_r + wall);
            // A lip that locates the lid in the cavity.
            translate([0, 0, -lid_lip_h]) difference() {
                rounded_box([cavity.x - 0.4, cavity.y - 0.4, lid_lip_h + eps], corner_r - 0.2);
                translate([0, 0, -eps]) rounded_box([cavity.x - 3.2, cavity.y - 3.2, lid_lip_h + 3 * eps], corner_r - 1.6);
                for (p = boss_xy) translate([p.x, p.y, -eps]) cylinder(d = boss_d + 0.8, h = 2);
            }
        }
        for (p = boss_xy) {
            translate([p.x, p.y, -2]) cylinder(d = screw_clear_d, h = lid_t + 4);
            translate([p.x, p.y, lid_t - 1.0]) cylinder(d = screw_head_d, h = 2);
        }
        translate([xiao_x + 3, xiao_y, -2]) cylinder(d = led_hole_d, h = lid_t + 4);
        if (show_axes)
            translate([0, 0, lid_t - 0.6]) linear_extrude(0.6 + eps) axis_marks();
    }
}

if (part == "base") base();
if (part == "lid") lid();
if (part == "all") {
    base();
    // Lid beside the base, upside down as it is printed: the engraved face on the bed,
    // the lip upwards (no bridges).
    translate([0, outer.y + 16, lid_t]) rotate([180, 0, 0]) lid();
}
