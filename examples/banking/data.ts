/**
 * Word lists the mock data is drawn from: common US given names and surnames, real cities with
 * their state and a ZIP prefix of that city (so a postal code matches its city), street names,
 * and merchants/payers for transaction descriptions. Domains are the reserved example ones.
 */
export const FIRST_NAMES = [
  'James', 'Mary', 'John', 'Patricia', 'Robert', 'Jennifer', 'Michael', 'Linda', 'William', 'Elizabeth',
  'David', 'Barbara', 'Richard', 'Susan', 'Joseph', 'Jessica', 'Thomas', 'Sarah', 'Charles', 'Karen',
  'Christopher', 'Lisa', 'Daniel', 'Nancy', 'Matthew', 'Betty', 'Anthony', 'Margaret', 'Mark', 'Sandra',
  'Donald', 'Ashley', 'Steven', 'Kimberly', 'Paul', 'Emily', 'Andrew', 'Donna', 'Joshua', 'Michelle',
  'Kenneth', 'Carol', 'Kevin', 'Amanda', 'Brian', 'Melissa', 'George', 'Deborah', 'Timothy', 'Stephanie',
  'Carlos', 'Maria', 'Luis', 'Sofia', 'Wei', 'Mei', 'Raj', 'Priya', 'Hiroshi', 'Yuki', 'Omar', 'Fatima',
] as const;

export const LAST_NAMES = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
  'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts',
  'Chen', 'Patel', 'Kim', 'Tanaka', 'Cohen', 'Murphy', 'Sullivan', 'Novak', 'Okafor', 'Haddad',
] as const;

export interface City {
  city: string;
  state: string;
  /** First three digits of the city's ZIP codes. */
  zip3: string;
}

export const CITIES: readonly City[] = [
  { city: 'New York', state: 'NY', zip3: '100' },
  { city: 'Brooklyn', state: 'NY', zip3: '112' },
  { city: 'Los Angeles', state: 'CA', zip3: '900' },
  { city: 'San Francisco', state: 'CA', zip3: '941' },
  { city: 'San Diego', state: 'CA', zip3: '921' },
  { city: 'Chicago', state: 'IL', zip3: '606' },
  { city: 'Houston', state: 'TX', zip3: '770' },
  { city: 'Austin', state: 'TX', zip3: '787' },
  { city: 'Dallas', state: 'TX', zip3: '752' },
  { city: 'Phoenix', state: 'AZ', zip3: '850' },
  { city: 'Philadelphia', state: 'PA', zip3: '191' },
  { city: 'Seattle', state: 'WA', zip3: '981' },
  { city: 'Portland', state: 'OR', zip3: '972' },
  { city: 'Denver', state: 'CO', zip3: '802' },
  { city: 'Boston', state: 'MA', zip3: '021' },
  { city: 'Atlanta', state: 'GA', zip3: '303' },
  { city: 'Miami', state: 'FL', zip3: '331' },
  { city: 'Orlando', state: 'FL', zip3: '328' },
  { city: 'Minneapolis', state: 'MN', zip3: '554' },
  { city: 'Nashville', state: 'TN', zip3: '372' },
  { city: 'Columbus', state: 'OH', zip3: '432' },
  { city: 'Charlotte', state: 'NC', zip3: '282' },
  { city: 'Detroit', state: 'MI', zip3: '482' },
  { city: 'Las Vegas', state: 'NV', zip3: '891' },
  { city: 'Salt Lake City', state: 'UT', zip3: '841' },
];

export const STREETS = [
  'Main', 'Oak', 'Maple', 'Cedar', 'Pine', 'Elm', 'Washington', 'Lake', 'Hill', 'Park',
  'Sunset', 'Highland', 'River', 'Church', 'Lincoln', 'Jefferson', 'Franklin', 'Madison', 'Spring', 'Chestnut',
] as const;
export const STREET_SUFFIXES = ['St', 'Ave', 'Blvd', 'Rd', 'Ln', 'Dr', 'Ct', 'Way'] as const;

export const EMAIL_DOMAINS = ['example.com', 'example.net', 'example.org'] as const;

export const EMPLOYERS = ['Acme Corp', 'Globex', 'Initech', 'Umbrella Health', 'Stark Logistics', 'Wayne Foods', 'Hooli', 'Vandelay Industries'] as const;
export const MERCHANTS = ['Whole Foods', 'Target', 'Shell', 'Amazon', 'Costco', 'Starbucks', 'Home Depot', 'CVS Pharmacy', 'Delta Air Lines', 'Netflix', 'Uber', 'Safeway'] as const;
export const BILLERS = ['Con Edison', 'Comcast', 'Verizon Wireless', 'State Farm', 'City Water Dept', 'AT&T'] as const;
export const FEES = ['Monthly maintenance fee', 'Overdraft fee', 'Wire transfer fee', 'Foreign transaction fee', 'ATM fee'] as const;
